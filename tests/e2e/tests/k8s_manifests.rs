//! The Kubernetes manifests in deploy/k8s/ (issue 7, point 2): every overlay renders with
//! `kubectl kustomize` (the dev overlay in a temp copy, after its make-dev-certs.sh made the
//! files its secretGenerator reads) and passes `kubernetes-validate --strict`; the rendered
//! objects meet the deployment's requirements (gRPC probes on a plain health port, requests,
//! host namespaces, sockets shared in the pod, the NetworkPolicy, the PDB, hashed ConfigMaps;
//! see k8s_support/checks.rs), and those checks do fail on broken copies; every flag a
//! container passes is one its binary takes; and the dev overlay's generated certificates and
//! tokens, mounted where the manifests mount them and used with the manifests' own TLS flags,
//! connect a real gateway to a real node service over mutual TLS.
//! No cluster is needed.

mod k8s_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use virtplane_e2e::{KillOnDrop, binary};

use k8s_support::checks::{self, Expect, GATEWAY, NODE, SecretSource};
use k8s_support::{
    Overlay, Rendered, base64_decode, container, expanded_argv, find, flag_values, id, items,
    kubectl, kubernetes_validate, pod_spec, render, run, str_at, workloads,
};

/// The Kubernetes version the manifests are validated against.
const KUBERNETES_VERSION: &str = "1.34.0";

fn expectation(overlay: Overlay) -> Expect {
    match overlay {
        Overlay::Dev => Expect {
            gateway_replicas: 1,
            image: "virtplane:dev",
            secrets: SecretSource::Generated,
        },
        Overlay::Prod => Expect {
            gateway_replicas: 3,
            image: "registry.example.com/virtplane/virtplane:0.1.0",
            secrets: SecretSource::Existing,
        },
        Overlay::Base => unreachable!("the base is not applied on its own"),
    }
}

#[test]
fn every_overlay_renders_and_passes_kubernetes_validate_strict() {
    let Some(kubectl) = kubectl() else {
        return;
    };
    let Some(validate) = kubernetes_validate() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    for overlay in Overlay::ALL {
        let rendered = render(&kubectl, overlay);
        let file = dir
            .path()
            .join(format!("{}.yaml", overlay.path().replace('/', "-")));
        std::fs::write(&file, &rendered.text).expect("write the rendered manifests");
        let mut command = Command::new(&validate);
        command
            .args([
                "--strict",
                "--quiet",
                "--kubernetes-version",
                KUBERNETES_VERSION,
            ])
            .arg(&file);
        let validated = run(command);
        assert!(
            validated.success,
            "{}: kubernetes-validate --strict (Kubernetes {KUBERNETES_VERSION}) rejects the \
             rendered manifests:\n{}",
            overlay.path(),
            validated.said()
        );
    }

    // The validator itself: an unknown field must fail under --strict.
    let rendered = render(&kubectl, Overlay::Prod);
    let broken = rendered
        .text
        .replacen("hostPID: true", "hostPID: true\n      hostPIDs: true", 1);
    assert_ne!(broken, rendered.text, "the prod output has hostPID");
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, broken).expect("write the broken copy");
    let mut command = Command::new(&validate);
    command
        .args([
            "--strict",
            "--quiet",
            "--kubernetes-version",
            KUBERNETES_VERSION,
        ])
        .arg(&file);
    let validated = run(command);
    assert!(
        !validated.success && validated.said().contains("hostPIDs"),
        "kubernetes-validate --strict accepted an unknown field:\n{}",
        validated.said()
    );
}

#[test]
fn every_overlay_meets_the_deployment_requirements() {
    let Some(kubectl) = kubectl() else {
        return;
    };
    for overlay in [Overlay::Dev, Overlay::Prod] {
        let rendered = render(&kubectl, overlay);
        let problems = checks::check(&rendered.objects, &expectation(overlay));
        assert!(
            problems.is_empty(),
            "{} does not meet the requirements:\n  {}",
            overlay.path(),
            problems.join("\n  ")
        );
    }
}

/// `objects` with `change` applied to the object `kind/name`.
fn changed(objects: &[Value], kind: &str, name: &str, change: impl Fn(&mut Value)) -> Vec<Value> {
    let mut copy = objects.to_vec();
    let object = copy
        .iter_mut()
        .find(|o| str_at(o, "/kind") == kind && str_at(o, "/metadata/name") == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} to change"));
    change(object);
    copy
}

/// The container `name` of a workload object, mutable.
fn container_mut<'a>(workload: &'a mut Value, name: &str) -> &'a mut Value {
    workload
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
        .and_then(|cs| cs.iter_mut().find(|c| str_at(c, "/name") == name))
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The checks can fail: each broken copy of the rendered output is reported, and the
/// report names what is missing.
#[test]
fn the_checks_report_what_is_missing() {
    let Some(kubectl) = kubectl() else {
        return;
    };
    let rendered = render(&kubectl, Overlay::Dev);
    let expect = expectation(Overlay::Dev);
    let objects = &rendered.objects;
    assert_eq!(checks::check(objects, &expect), Vec::<String>::new());

    let cases: Vec<(&str, Vec<Value>, &[&str])> = vec![
        (
            "storaged without a liveness probe",
            changed(objects, "DaemonSet", NODE, |ds| {
                container_mut(ds, "storaged")
                    .as_object_mut()
                    .and_then(|c| c.remove("livenessProbe"))
                    .expect("storaged has a liveness probe");
            }),
            &["container storaged", "no livenessProbe"],
        ),
        (
            "the gateway's readiness probe on the TLS port",
            changed(objects, "Deployment", GATEWAY, |d| {
                container_mut(d, "gateway")["readinessProbe"]["grpc"]["port"] = 7443.into();
            }),
            &["container gateway", "readinessProbe probes port 7443"],
        ),
        (
            "domaind without a cpu request",
            changed(objects, "DaemonSet", NODE, |ds| {
                container_mut(ds, "domaind")["resources"]["requests"]
                    .as_object_mut()
                    .and_then(|r| r.remove("cpu"))
                    .expect("domaind requests cpu");
            }),
            &["container domaind", "resources.requests.cpu"],
        ),
        (
            "the node policy open to every namespace",
            changed(objects, "NetworkPolicy", NODE, |np| {
                np["spec"]["ingress"][0]["from"] = serde_json::json!([{ "namespaceSelector": {} }]);
            }),
            &[
                "NetworkPolicy/virtplane-node",
                "port 7101",
                "not only from the gateway",
            ],
        ),
        (
            "no PodDisruptionBudget",
            objects
                .iter()
                .filter(|o| str_at(o, "/kind") != "PodDisruptionBudget")
                .cloned()
                .collect(),
            &["PodDisruptionBudget selecting the virtplane-gateway pods"],
        ),
        (
            "a ConfigMap without its hash",
            objects
                .iter()
                .map(|o| {
                    let text = serde_json::to_string(o).expect("to JSON");
                    let renamed = regex_free_unhash(&text, "virtplane-gateway-config-");
                    serde_json::from_str(&renamed).expect("from JSON")
                })
                .collect(),
            &["ConfigMap/virtplane-gateway-config:", "content hash"],
        ),
        (
            "storaged as root",
            changed(objects, "DaemonSet", NODE, |ds| {
                container_mut(ds, "storaged")["securityContext"]["runAsUser"] = 0.into();
            }),
            &["container storaged", "non-root"],
        ),
    ];
    for (what, broken, needles) in cases {
        let problems = checks::check(&broken, &expect).join("\n");
        for needle in needles {
            assert!(
                problems.contains(needle),
                "{what}: the checks should report {needle:?}, they said:\n{problems}"
            );
        }
    }
}

/// `text` with every `prefix<10-char hash>` replaced by `prefix` without its trailing dash.
fn regex_free_unhash(text: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at]);
        out.push_str(prefix.trim_end_matches('-'));
        rest = &rest[at + prefix.len()..];
        rest = rest.get(10..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// Every container runs a virtplane binary whose `--help` lists each `--flag` it passes,
/// and the binary accepts the whole argument list (a dry parse: the arguments then `--help`).
#[test]
fn every_flag_in_every_container_is_one_the_binary_takes() {
    let Some(kubectl) = kubectl() else {
        return;
    };
    let mut missing = Vec::new();
    for overlay in [Overlay::Dev, Overlay::Prod] {
        let rendered = render(&kubectl, overlay);
        for workload in workloads(&rendered.objects) {
            for container in items(pod_spec(workload), "/containers") {
                let who = format!(
                    "{} {} container {}",
                    overlay.path(),
                    id(workload),
                    str_at(container, "/name")
                );
                let words = expanded_argv(container);
                let program = words.first().cloned().unwrap_or_default();
                let Some(name) = program.strip_prefix("/usr/local/bin/") else {
                    missing.push(format!(
                        "{who}: runs {program:?}, not a virtplane binary in /usr/local/bin \
                         (the image's path)"
                    ));
                    continue;
                };
                let mut help = Command::new(binary(name));
                help.arg("--help");
                let help = run(help);
                assert!(help.success, "{name} --help failed: {}", help.stderr);
                let known: Vec<&str> = help
                    .stdout
                    .split(|c: char| c.is_whitespace() || c == ',' || c == '=')
                    .filter(|w| w.starts_with("--"))
                    .collect();
                let mut all_known = true;
                for word in &words[1..] {
                    if let Some(flag) = word.strip_prefix("--") {
                        let flag = format!("--{}", flag.split('=').next().unwrap_or(flag));
                        if !known.contains(&flag.as_str()) {
                            all_known = false;
                            missing.push(format!(
                                "{who}: passes {flag}, which `{name} --help` does not list"
                            ));
                        }
                    }
                }
                if all_known {
                    let mut dry = Command::new(binary(name));
                    dry.args(&words[1..]).arg("--help");
                    let parsed = run(dry);
                    if !parsed.success {
                        missing.push(format!(
                            "{who}: {name} rejects its arguments: {}",
                            parsed.stderr.trim()
                        ));
                    }
                }
            }
        }
    }
    missing.dedup();
    assert!(missing.is_empty(), "\n  {}", missing.join("\n  "));
}

/// Writes the files of every Secret volume that `container` mounts under `root` (a mount at
/// /etc/virtplane/tls becomes ROOT/etc/virtplane/tls), from the rendered Secrets.
fn materialize_secret_mounts(
    rendered: &Rendered,
    workload: &Value,
    container: &Value,
    root: &Path,
) {
    for mount in items(container, "/volumeMounts") {
        let volume = items(pod_spec(workload), "/volumes")
            .iter()
            .find(|v| str_at(v, "/name") == str_at(mount, "/name"))
            .expect("every mount has its volume");
        let secret_name = str_at(volume, "/secret/secretName");
        if secret_name.is_empty() {
            continue;
        }
        let secret = find(&rendered.objects, "Secret", secret_name)
            .unwrap_or_else(|| panic!("the dev overlay does not generate {secret_name}"));
        let dir = root.join(str_at(mount, "/mountPath").trim_start_matches('/'));
        std::fs::create_dir_all(&dir).expect("mount dir");
        let data = secret
            .get("data")
            .and_then(Value::as_object)
            .expect("Secret data");
        for (key, encoded) in data {
            let bytes = base64_decode(encoded.as_str().expect("base64 string"));
            std::fs::write(dir.join(key), bytes).expect("write a Secret file");
        }
    }
}

/// The container's values of `flags` as arguments, their file paths moved under `root`.
fn file_flags(container: &Value, flags: &[&str], root: &Path) -> Vec<String> {
    let mut args = Vec::new();
    for flag in flags {
        let [value] = flag_values(container, flag)
            .try_into()
            .unwrap_or_else(|v| panic!("expected one {flag}, found {v:?}"));
        args.push((*flag).to_owned());
        args.push(
            root.join(value.trim_start_matches('/'))
                .display()
                .to_string(),
        );
    }
    args
}

fn free_port() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    probe.local_addr().expect("its address")
}

fn spawn_logged(command: &mut Command, log: &Path) -> KillOnDrop {
    let file = std::fs::File::create(log).expect("log file");
    let child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    KillOnDrop(child)
}

fn wait_for_port(addr: SocketAddr, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {addr}; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The dev overlay's certificates and tokens work: storaged with the node Secret's files and
/// the DaemonSet's TLS flags, the gateway with its three Secrets and the Deployment's TLS,
/// tokens and server-name flags, and virtctl over https with the dev CA and admin token.
#[test]
fn the_dev_secrets_connect_gateway_and_node_over_mutual_tls() {
    let Some(kubectl) = kubectl() else {
        return;
    };
    let rendered = render(&kubectl, Overlay::Dev);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("root");
    let node = find(&rendered.objects, "DaemonSet", NODE).expect("the node DaemonSet");
    let gateway = find(&rendered.objects, "Deployment", GATEWAY).expect("the gateway");
    let storaged = container(node, "storaged").expect("storaged");
    let gateway_container = container(gateway, "gateway").expect("the gateway container");
    materialize_secret_mounts(&rendered, node, storaged, &root);
    materialize_secret_mounts(&rendered, gateway, gateway_container, &root);

    let storage_addr = free_port();
    let storage_log = dir.path().join("storaged.log");
    let mut command = Command::new(binary("virtplane-storaged"));
    command
        .args(["--driver", "test", "--state-dir"])
        .arg(dir.path().join("storage"))
        .arg("--listen")
        .arg(storage_addr.to_string())
        .args(file_flags(
            storaged,
            &["--tls-cert", "--tls-key", "--tls-client-ca"],
            &root,
        ));
    let _storaged = spawn_logged(&mut command, &storage_log);

    let gateway_addr = free_port();
    let gateway_log = dir.path().join("gateway.log");
    let mut command = Command::new(binary("virtplane-gateway"));
    command
        .arg("--listen")
        .arg(gateway_addr.to_string())
        .args(file_flags(
            gateway_container,
            &[
                "--tls-cert",
                "--tls-key",
                "--tokens",
                "--client-tls-ca",
                "--client-tls-cert",
                "--client-tls-key",
            ],
            &root,
        ))
        .arg("--client-tls-server-name")
        .args(flag_values(gateway_container, "--client-tls-server-name"))
        .arg("--backend")
        .arg(format!("storage={storage_addr}"));
    let _gateway = spawn_logged(&mut command, &gateway_log);
    wait_for_port(storage_addr, &storage_log);
    wait_for_port(gateway_addr, &gateway_log);

    let secrets = rendered.dev_secrets();
    let token = std::fs::read_to_string(secrets.join("admin.token")).expect("the admin token");
    let mut virtctl = Command::new(binary("virtctl"));
    virtctl
        .env("VIRTCTL_CONFIG", dir.path().join("none.yaml"))
        .env_remove("VIRTPLANE_SERVER")
        .env_remove("VIRTPLANE_TLS_CA")
        .env("VIRTPLANE_TOKEN", token.trim())
        .arg("--server")
        .arg(format!("https://localhost:{}", gateway_addr.port()))
        .arg("--tls-ca")
        .arg(secrets.join("ca.crt"))
        .args(["--timeout", "20", "pool-list", "--all"]);
    let listed = run(virtctl);
    assert!(
        listed.success && listed.stdout.contains("default"),
        "virtctl through the gateway to storaged with the dev secrets failed:\n{}\n\
         gateway log:\n{}\nstoraged log:\n{}",
        listed.said(),
        std::fs::read_to_string(&gateway_log).unwrap_or_default(),
        std::fs::read_to_string(&storage_log).unwrap_or_default()
    );
}

#[test]
fn base64_decodes_what_kubernetes_writes() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGVs\nbG8h"), b"hello!");
    assert_eq!(base64_decode(""), b"");
}
