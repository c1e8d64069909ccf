#!/usr/bin/env python3
"""A client in another language: Python grpcio stubs generated from proto/ call List, Define
and Start through the real gateway in front of the real domain service, with a token.

Starts both daemons (target/debug) on temporary unix sockets, and stops them by pid at the
end, also on failure. Prints "N passed, N failed" as its last line.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("VIRTPLANE_BIN_DIR", REPO / "target" / "debug"))

WEB_XML = """<domain type='test'>
  <name>py-web</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
</domain>"""


def generate_stubs(out: pathlib.Path) -> None:
    try:
        from grpc_tools import protoc
        import grpc_tools
    except ImportError:
        sys.exit("grpcio-tools is not installed: python3 -m pip install grpcio grpcio-tools")
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(REPO / "proto")) for p in (REPO / "proto" / "virtplane" / "v1").glob("*.proto"))
    code = protoc.main(["protoc", f"-I{REPO / 'proto'}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", *protos])
    if code != 0:
        sys.exit(f"protoc failed with {code}")


def wait_for_socket(path: pathlib.Path, proc: subprocess.Popen) -> None:
    deadline = time.time() + 30
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        if time.time() > deadline:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.05)


def main() -> int:
    work = pathlib.Path(tempfile.mkdtemp(prefix="virtplane-py-"))
    procs = []
    passed = failed = 0
    try:
        generate_stubs(work)
        sys.path.insert(0, str(work))
        import grpc
        from virtplane.v1 import domain_pb2, domain_pb2_grpc

        tokens = {"admin": "py-admin-token", "viewer": "py-viewer-token"}
        (work / "tokens").write_text("".join(
            f"{role} {role} sha256:{hashlib.sha256(tok.encode()).hexdigest()}\n" for role, tok in tokens.items()))
        domain_sock, gateway_sock = work / "domain.sock", work / "gateway.sock"
        log = open(work / "daemons.log", "wb")
        procs.append(subprocess.Popen([str(BIN / "virtplane-domaind"), "--driver", "test", "--state-dir", str(work / "state"),
                                       "--listen", f"unix:{domain_sock}"], stdout=log, stderr=log))
        wait_for_socket(domain_sock, procs[-1])
        procs.append(subprocess.Popen([str(BIN / "virtplane-gateway"), "--listen", f"unix:{gateway_sock}", "--tokens", str(work / "tokens"),
                                       "--backend", f"domain=unix:{domain_sock}"], stdout=log, stderr=log))
        wait_for_socket(gateway_sock, procs[-1])

        # grpc-core uses the socket path as :authority for unix: targets, which hyper's HTTP/2
        # server (tonic) rejects as malformed (RST_STREAM PROTOCOL_ERROR): name one.
        channel = grpc.insecure_channel(f"unix:{gateway_sock}", options=[("grpc.default_authority", "localhost")])
        stub = domain_pb2_grpc.DomainServiceStub(channel)
        admin = [("authorization", f"Bearer {tokens['admin']}")]
        viewer = [("authorization", f"Bearer {tokens['viewer']}")]

        def check(name, fn):
            nonlocal passed, failed
            try:
                fn()
                passed += 1
                print(f"ok   {name}")
            except Exception:
                failed += 1
                print(f"FAIL {name}")
                traceback.print_exc()

        def list_shows_default_world():
            reply = stub.List(domain_pb2.ListDomainsRequest(), metadata=admin, timeout=10)
            names = {d.name: d for d in reply.domains}
            assert "test" in names, names
            assert names["test"].state == domain_pb2.DOMAIN_STATE_RUNNING

        def define_then_start():
            stub.Define(domain_pb2.DefineDomainRequest(xml=WEB_XML), metadata=admin, timeout=10)
            ref = domain_pb2.DomainRef(name="py-web")
            stub.Start(domain_pb2.StartDomainRequest(domain=ref), metadata=admin, timeout=10)
            info = stub.GetInfo(domain_pb2.GetDomainInfoRequest(domain=ref), metadata=admin, timeout=10)
            assert info.domain.state == domain_pb2.DOMAIN_STATE_RUNNING, info
            assert info.max_memory_kib == 256 * 1024, info

        def viewer_cannot_start():
            ref = domain_pb2.DomainRef(name="py-web")
            try:
                stub.Start(domain_pb2.StartDomainRequest(domain=ref), metadata=viewer, timeout=10)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
                assert "domain:start" in error.details(), error.details()
                return
            raise AssertionError("viewer was allowed to start a domain")

        def no_token_is_unauthenticated():
            try:
                stub.List(domain_pb2.ListDomainsRequest(), timeout=10)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
                return
            raise AssertionError("a call without a token was served")

        check("list shows the default world", list_shows_default_world)
        check("define then start through the gateway", define_then_start)
        check("viewer cannot start", viewer_cannot_start)
        check("no token is unauthenticated", no_token_is_unauthenticated)
        channel.close()
    except Exception:
        failed += 1
        traceback.print_exc()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if failed:
            log_path = work / "daemons.log"
            if log_path.exists():
                print(log_path.read_text(errors="replace")[-4000:])
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
