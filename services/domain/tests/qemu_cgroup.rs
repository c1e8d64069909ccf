//! QEMU outside the service's cgroup (`process::cgroup`), with the host's real cgroupfs, a real
//! QEMU (TCG, paused by `-S`, no guest) and a real "service" process.
//!
//! The service is this test executable re-run as a helper (active only with [`HELPER_ENV`]
//! set): it joins a cgroup the test made for it in the cgroup v2 hierarchy, spawns QEMU (which
//! starts in that cgroup, as the driver's QEMUs do), places it with [`VmCgroups::place`] and
//! waits. The test then kills the whole service cgroup, as systemd or a container runtime
//! would, and checks that the VM survived and still answers QMP.
//!
//! Everything lives below `virtplane-test-<pid>` in each hierarchy and is killed and removed
//! by [`TestCgroups`] when dropped. The tests need root and a writable cgroupfs; without them
//! they say so on stderr and pass.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use qapi::qmp;
use serde_json::{Value, json};
use virtplane_domain::driver::qemu::argv::{ArgvContext, build};
use virtplane_domain::driver::qemu::monitor::Monitor;
use virtplane_domain::driver::qemu::process::QemuProcess;
use virtplane_domain::driver::qemu::process::cgroup::{CgroupError, VmCgroups};
use virtplane_domain::xml::parse_domain;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// Guards every wait against a hang; not a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Set for the helper: the service cgroup directory it joins.
const HELPER_ENV: &str = "VIRTPLANE_CGROUP_HELPER";
/// The helper's run dir (QEMU's sockets and log, the report).
const RUN_DIR_ENV: &str = "VIRTPLANE_CGROUP_RUN_DIR";
/// The VM cgroup root the helper places QEMU under.
const ROOT_ENV: &str = "VIRTPLANE_CGROUP_ROOT";
/// Set for the unprivileged helper of `place_without_permission_fails_clearly`.
const NOBODY_ENV: &str = "VIRTPLANE_CGROUP_NOBODY";

const VM_NAME: &str = "cg-survivor";
const VM_KEY: &str = "1-cg-survivor";

/// A cgroup filesystem mount showing its whole hierarchy.
struct CgroupMount {
    point: PathBuf,
    v2: bool,
}

fn cgroup_mounts() -> Vec<CgroupMount> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let fstype = right.split(' ').next()?;
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let point = PathBuf::from(left.get(4)?);
            (left.get(3)? == &"/").then_some(CgroupMount { point, v2 })
        })
        .collect()
}

/// The cgroup v2 mount, if it can be written: the tests' precondition.
fn writable_v2(name: &str) -> Option<PathBuf> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: not root, cannot create cgroups");
        return None;
    }
    let Some(v2) = cgroup_mounts().into_iter().find(|m| m.v2) else {
        eprintln!("SKIPPED: no cgroup v2 hierarchy is mounted");
        return None;
    };
    let probe = v2.point.join(name);
    match std::fs::create_dir(&probe) {
        Ok(()) => Some(v2.point),
        Err(e) => {
            eprintln!("SKIPPED: cannot create {}: {e}", probe.display());
            None
        }
    }
}

/// Owns `<mount>/<name>` in every hierarchy: when dropped, kills every process in those
/// subtrees (only this test's processes can be there) and removes the cgroups, deepest first.
struct TestCgroups {
    name: String,
}

impl TestCgroups {
    fn tops(&self) -> Vec<(PathBuf, bool)> {
        cgroup_mounts()
            .into_iter()
            .map(|m| (m.point.join(&self.name), m.v2))
            .filter(|(dir, _)| dir.is_dir())
            .collect()
    }
}

impl Drop for TestCgroups {
    fn drop(&mut self) {
        let tops = self.tops();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut pids = Vec::new();
            for (top, _) in &tops {
                for dir in subtree(top) {
                    pids.extend(procs(&dir));
                }
            }
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for (top, _) in &tops {
            let mut dirs = subtree(top);
            dirs.reverse();
            for dir in dirs {
                remove_dir_patiently(&dir);
            }
        }
    }
}

/// `top` and every cgroup below it, parents before children.
fn subtree(top: &Path) -> Vec<PathBuf> {
    let mut out = vec![top.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = std::fs::read_dir(&out[i]) {
            let mut children: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    out
}

fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A cgroup whose last process just died may report EBUSY for a moment.
fn remove_dir_patiently(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Err(e) = std::fs::remove_dir(dir) {
        if e.kind() == std::io::ErrorKind::NotFound || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed and reaped when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills, when dropped, the QEMU with this pid if it still is the test's QEMU.
struct VmGuard(i32);

impl Drop for VmGuard {
    fn drop(&mut self) {
        if let Ok(cmd) = std::fs::read(format!("/proc/{}/cmdline", self.0))
            && String::from_utf8_lossy(&cmd).contains(&format!("guest={VM_NAME}"))
        {
            let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
        }
    }
}

fn running(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && !stat[stat.rfind(')').unwrap() + 1..]
            .trim_start()
            .starts_with('Z')
}

/// The cgroup paths of `pid`, one `ID:CONTROLLERS:PATH` line per hierarchy.
fn cgroup_lines(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Kills everything in a cgroup the way a service manager does: `cgroup.kill` where the kernel
/// has it (v2, Linux 5.14), else SIGKILL to every listed process until none is left.
fn kill_cgroup(dir: &Path) {
    let knob = dir.join("cgroup.kill");
    if knob.exists() {
        std::fs::write(&knob, "1").unwrap();
    } else {
        for pid in procs(dir) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    let deadline = Instant::now() + HANG_GUARD;
    while !procs(dir).is_empty() {
        assert!(Instant::now() < deadline, "{} never emptied", dir.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn vm_survives_killing_the_service_cgroup() {
    let name = format!("virtplane-test-{}", std::process::id());
    let Some(v2) = writable_v2(&name) else {
        return;
    };
    let cgroups = TestCgroups { name: name.clone() };
    let service = v2.join(&name).join("service");
    std::fs::create_dir(&service).unwrap();
    let run = tempfile::tempdir().unwrap();
    let root = format!("{name}/vms");

    let mut helper = Child(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "helper_places_qemu_then_waits", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(HELPER_ENV, &service)
            .env(RUN_DIR_ENV, run.path())
            .env(ROOT_ENV, &root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let report = wait_for_report(&run.path().join("report.json"), &mut helper);
    let vm = report["vm_pid"].as_i64().unwrap() as i32;
    let _vm_guard = VmGuard(vm);
    assert!(report["error"].is_null(), "{report}");

    // QEMU started where its starter was: in the service's cgroup.
    let service_path = format!("/{name}/service");
    let before: Vec<&str> = report["before"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("0::") && l.ends_with(&service_path)),
        "{before:?}"
    );
    // Placed in every hierarchy the service is in (all are writable here), none skipped.
    let hierarchies = cgroup_lines(std::process::id() as i32).len();
    let placed = report["placed"].as_array().unwrap();
    assert!(report["skipped"].as_array().unwrap().is_empty(), "{report}");
    assert_eq!(placed.len(), hierarchies, "{report}");
    let vm_path = format!("/{name}/vms/{VM_KEY}");
    let now = cgroup_lines(vm);
    assert_eq!(now.len(), hierarchies);
    for line in &now {
        assert!(line.ends_with(&format!(":{vm_path}")), "{now:?}");
    }

    eprintln!("QEMU {vm} started in {service_path}, placed in {placed:?}");

    // The service's cgroup dies as a whole.
    kill_cgroup(&service);
    let status = helper.0.wait().unwrap();
    assert!(!status.success(), "helper was not killed: {status}");
    assert!(!running(helper.0.id() as i32));

    // The VM did not: it runs and its monitor answers.
    assert!(running(vm), "QEMU died with the service's cgroup");
    let (mon, _events) = Monitor::connect(&run.path().join("qmp.sock"), HANG_GUARD)
        .await
        .unwrap();
    let st = mon.execute(qmp::query_status {}).await.unwrap();
    assert!(matches!(st.status, qmp::RunState::prelaunch), "{st:?}");
    drop(mon);

    // Once the VM is gone, its cgroups go too, in every hierarchy; the root stays.
    let cg = VmCgroups::new(Some(Path::new(&root))).unwrap();
    let busy = cg.remove(VM_KEY).unwrap();
    assert_eq!(
        busy.busy.len(),
        hierarchies,
        "removed under a live VM: {busy:?}"
    );
    kill(Pid::from_raw(vm), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + HANG_GUARD;
    while running(vm) {
        assert!(Instant::now() < deadline, "QEMU survived SIGKILL");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut removed = Vec::new();
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let r = cg.remove(VM_KEY).unwrap();
        removed.extend(r.removed);
        if r.busy.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still busy: {:?}", r.busy);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(removed.len(), hierarchies, "{removed:?}");
    for (top, _) in cgroups.tops() {
        assert!(
            top.join("vms").is_dir(),
            "root removed in {}",
            top.display()
        );
        assert!(!top.join("vms").join(VM_KEY).exists());
    }
    // Removing again finds nothing to do.
    let again = cg.remove(VM_KEY).unwrap();
    assert!(again.removed.is_empty() && again.busy.is_empty());
}

/// Polls for the helper's report; fails if the helper dies first.
fn wait_for_report(path: &Path, helper: &mut Child) -> Value {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text).unwrap();
        }
        if let Some(status) = helper.0.try_wait().unwrap() {
            panic!("helper exited before reporting: {status}");
        }
        assert!(start.elapsed() < HANG_GUARD, "helper never reported");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Not a test on its own: the "service" of `vm_survives_killing_the_service_cgroup`. Joins the
/// service cgroup, spawns QEMU, places it, reports, then waits to be killed.
#[test]
fn helper_places_qemu_then_waits() {
    let Some(service) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let run = PathBuf::from(std::env::var_os(RUN_DIR_ENV).unwrap());
    let root = PathBuf::from(std::env::var_os(ROOT_ENV).unwrap());
    std::fs::write(
        Path::new(&service).join("cgroup.procs"),
        std::process::id().to_string(),
    )
    .unwrap();

    let xml = format!(
        "<domain type='qemu'><name>{VM_NAME}</name>\
         <memory unit='MiB'>64</memory>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
    );
    let ctx = ArgvContext {
        emulator: PathBuf::from(QEMU),
        run_dir: run.clone(),
        kvm_usable: false,
    };
    let cmd = build(&parse_domain(&xml).unwrap(), &ctx).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let qemu = rt
        .block_on(QemuProcess::spawn(
            &cmd,
            VM_NAME,
            &run.join("qemu.log"),
            HANG_GUARD,
        ))
        .unwrap();
    let before = cgroup_lines(qemu.pid());
    let result = VmCgroups::new(Some(&root))
        .unwrap()
        .place(qemu.pid(), VM_KEY);
    let report = match result {
        Ok(p) => json!({
            "vm_pid": qemu.pid(),
            "before": before,
            "placed": p.placed,
            "skipped": p.skipped.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        }),
        Err(e) => json!({ "vm_pid": qemu.pid(), "error": e.to_string() }),
    };
    let tmp = run.join("report.tmp");
    std::fs::File::create(&tmp)
        .unwrap()
        .write_all(report.to_string().as_bytes())
        .unwrap();
    std::fs::rename(&tmp, run.join("report.json")).unwrap();
    // Bounded, so that a helper whose parent vanished does not linger forever.
    std::thread::sleep(HANG_GUARD * 4);
    let _ = kill(Pid::from_raw(qemu.pid()), Signal::SIGKILL);
}

/// An unprivileged service cannot create cgroups: every hierarchy is reported as skipped,
/// naming its path and the kernel's reason, and placement fails as a whole.
#[test]
fn place_without_permission_fails_clearly() {
    let name = format!("virtplane-test-{}-nobody", std::process::id());
    let Some(v2) = writable_v2(&name) else {
        return;
    };
    let _cgroups = TestCgroups { name: name.clone() };
    // The helper runs as nobody, and so does its attempt to create `<name>/vms/<key>`.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_places_itself_as_nobody", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(NOBODY_ENV, format!("{name}/vms"))
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("PLACE-ERROR: ").map(|(_, e)| e))
        .unwrap_or_else(|| panic!("no result line: {stdout}"));
    assert!(
        line.contains("stays in the service's cgroups, so killing them would kill it"),
        "{line}"
    );
    let vm_dir = v2.join(&name).join("vms");
    assert!(
        line.contains(&format!(
            "cgroup2: cannot create cgroup {}",
            vm_dir.display()
        )),
        "{line}"
    );
    assert!(line.contains("Permission denied"), "{line}");
    assert!(stdout.contains("ALL-NOT-WRITABLE: true"), "{stdout}");
    assert!(!vm_dir.exists());
}

/// Not a test on its own: the unprivileged "service" of
/// `place_without_permission_fails_clearly`.
#[test]
fn helper_places_itself_as_nobody() {
    let Some(root) = std::env::var_os(NOBODY_ENV) else {
        return;
    };
    let cg = VmCgroups::new(Some(Path::new(&root))).unwrap();
    let err = cg
        .place(std::process::id() as i32, "2-nobody")
        .expect_err("an unprivileged process placed itself");
    println!("PLACE-ERROR: {err}");
    let CgroupError::NowherePlaced { skipped, .. } = &err else {
        panic!("unexpected error: {err:?}");
    };
    let all = !skipped.is_empty() && skipped.iter().all(|s| s.reason.is_not_writable());
    println!("ALL-NOT-WRITABLE: {all}");
}

/// Bad configuration and bad input are refused before anything is touched, naming the value.
#[test]
fn bad_roots_keys_and_pids_are_refused() {
    let err = VmCgroups::new(Some(Path::new("../escape"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid VM cgroup root '../escape': empty, '.' and '..' components are not allowed"
    );
    let cg = VmCgroups::new(None).unwrap();
    let me = std::process::id() as i32;
    let err = cg.place(me, "../x").unwrap_err();
    assert!(
        err.to_string().starts_with("invalid VM cgroup name '../x'"),
        "{err}"
    );
    let err = cg.remove("a/b").unwrap_err();
    assert!(matches!(err, CgroupError::BadKey { .. }), "{err}");
    // A pid that cannot exist (above the kernel's limit of 2^22).
    let err = cg.place(i32::MAX, "1-x").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("process {} does not exist", i32::MAX)
    );
}

/// The cgroups below `<test top>/vms` in every hierarchy (the VM cgroups of the driver below).
fn vm_cgroups(cgroups: &TestCgroups) -> Vec<PathBuf> {
    cgroups
        .tops()
        .into_iter()
        .flat_map(|(top, _)| subtree(&top.join("vms")).into_iter().skip(1))
        .collect()
}

/// The driver removes a VM's cgroups as soon as the VM stops: `destroy` returns only once all
/// of QEMU's threads have exited (a zombie main thread is not enough: the others run on for
/// ~20 ms and keep the cgroup busy), and a QEMU killed under the driver is cleaned up too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_removes_vm_cgroups_when_vms_stop() {
    use virtplane_domain::driver::DomainDriver;
    use virtplane_domain::model::DomainRef;

    let name = format!("virtplane-test-{}-drv", std::process::id());
    if writable_v2(&name).is_none() {
        return;
    }
    let cgroups = TestCgroups { name: name.clone() };
    let root = format!("{name}/vms");
    let dir = tempfile::Builder::new()
        .prefix("vp-cgd-")
        .tempdir_in("/tmp")
        .unwrap();
    let driver = open_driver(dir.path(), &root).await;
    let xml = tiny_domain_xml;

    // Destroy (SIGTERM: QEMU's orderly exit, the slow one): no cgroup is left at return.
    let def = parse_domain(&xml("cg-destroyed")).unwrap();
    driver.create(def, false).await.unwrap();
    let placed = vm_cgroups(&cgroups);
    assert!(!placed.is_empty(), "QEMU was not placed in a VM cgroup");
    driver
        .destroy(&DomainRef::Name("cg-destroyed".into()), true)
        .await
        .unwrap();
    let left = vm_cgroups(&cgroups);
    assert!(left.is_empty(), "cgroups left after destroy: {left:?}");

    // kill -9 under the driver: the crash path cleans up as well.
    let def = parse_domain(&xml("cg-killed")).unwrap();
    driver.create(def, false).await.unwrap();
    let vm = driver
        .running_vm(&DomainRef::Name("cg-killed".into()))
        .unwrap()
        .1;
    let _guard = VmGuardPid(vm.pid());
    kill(Pid::from_raw(vm.pid()), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        // A transient domain is gone once it stops.
        let state = driver
            .lookup(&DomainRef::Name("cg-killed".into()))
            .map(|s| s.state);
        let left = vm_cgroups(&cgroups);
        if state.is_err() && left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "state {state:?}, cgroups left: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A QEMU that ends while the service is down (killed with it, or on its own) leaves its
/// cgroups to the next service run: reattaching finds it gone and removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_removes_cgroups_of_vms_that_ended_while_it_was_down() {
    use virtplane_domain::driver::DomainDriver;
    use virtplane_domain::model::{DomainRef, Reason, State};

    let name = format!("virtplane-test-{}-away", std::process::id());
    if writable_v2(&name).is_none() {
        return;
    }
    let cgroups = TestCgroups { name: name.clone() };
    let root = format!("{name}/vms");
    let dir = tempfile::Builder::new()
        .prefix("vp-cga-")
        .tempdir_in("/tmp")
        .unwrap();
    let domain = DomainRef::Name("cg-away".into());
    let driver = open_driver(dir.path(), &root).await;
    let def = parse_domain(&tiny_domain_xml("cg-away")).unwrap();
    driver.define(def).await.unwrap();
    driver.start(&domain, false).await.unwrap();
    let pid = driver.running_vm(&domain).unwrap().1.pid();
    let _guard = VmGuardPid(pid);
    assert!(
        !vm_cgroups(&cgroups).is_empty(),
        "QEMU was not placed in a VM cgroup"
    );

    // The service goes (its VM runs on), then the VM ends with nobody watching.
    drop(driver);
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + HANG_GUARD;
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "QEMU {pid} did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let driver = open_driver(dir.path(), &root).await;
    let info = driver.lookup(&domain).unwrap();
    assert_eq!(
        (info.state, info.reason),
        (State::Shutoff, Reason::ShutoffCrashed)
    );
    let left = vm_cgroups(&cgroups);
    assert!(left.is_empty(), "cgroups left after reattach: {left:?}");
}

/// The qemu driver with its state in `dir`, placing VMs below `root`.
async fn open_driver(
    dir: &Path,
    root: &str,
) -> std::sync::Arc<virtplane_domain::driver::qemu::QemuDriver> {
    virtplane_domain::driver::qemu::QemuDriver::open(&virtplane_domain::driver::DriverConfig {
        state_dir: dir.join("state"),
        run_dir: dir.join("run"),
        emulator: None,
        vm_cgroup_root: Some(Some(PathBuf::from(root))),
        network_service: None,
        storage_service: None,
        guest_agent_timeout: None,
    })
    .await
    .unwrap()
}

/// A domain with no disks that QEMU can start (TCG, 64 MiB).
fn tiny_domain_xml(name: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><memballoon model='none'/></devices></domain>"
    )
}

/// Kills, when dropped, a QEMU this test started, if it still runs as QEMU.
struct VmGuardPid(i32);

impl Drop for VmGuardPid {
    fn drop(&mut self) {
        if let Ok(cmd) = std::fs::read(format!("/proc/{}/cmdline", self.0))
            && String::from_utf8_lossy(&cmd).contains("guest=cg-")
        {
            let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
        }
    }
}
