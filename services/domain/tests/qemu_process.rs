//! QEMU processes that outlive the service, against a real QEMU (`qemu-system-x86_64`, TCG,
//! paused by `-S`, no guest). The command lines come from the real argv builder.
//!
//! "The service dies" is simulated by re-running this test executable as a helper process
//! (`helper_spawns_qemu_then_waits`, active only with `VIRTPLANE_PROCESS_HELPER` set) that
//! spawns QEMU, saves its record and is then killed with SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getpgid};
use qapi::qmp;
use virtplane_domain::driver::qemu::argv::{ArgvContext, QemuCommand, build};
use virtplane_domain::driver::qemu::monitor::Monitor;
use virtplane_domain::driver::qemu::process::{ProcessError, ProcessRecord, QemuProcess};
use virtplane_domain::xml::parse_domain;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// Guards every wait in these tests against a hang; not a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(30);

const HELPER_ENV: &str = "VIRTPLANE_PROCESS_HELPER";

/// Kills, when dropped, every QEMU it was told about that still runs, so a failing test leaves
/// no process behind. `reattach` keeps it from signalling a reused pid.
#[derive(Default)]
struct Cleanup(Vec<ProcessRecord>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for rec in &self.0 {
            if let Ok(Some(p)) = QemuProcess::reattach(rec) {
                let _ = kill(Pid::from_raw(p.pid()), Signal::SIGKILL);
            }
        }
    }
}

/// A helper process killed when dropped.
struct Helper(std::process::Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tiny paused TCG domain with `devices` and `extra` `<qemu:arg>`s, its run dir in `dir`.
fn command(dir: &Path, name: &str, devices: &str, extra: &[&str]) -> QemuCommand {
    assert!(
        Path::new(QEMU).exists(),
        "{QEMU} is missing: these tests need a real QEMU; \
         install it with `apt-get install qemu-system-x86`"
    );
    let args: String = extra
        .iter()
        .map(|a| format!("<qemu:arg value='{a}'/>"))
        .collect();
    let xml = format!(
        "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\
           <name>{name}</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1899</uuid>\
           <memory unit='MiB'>64</memory>\
           <os><type arch='x86_64' machine='pc'>hvm</type></os>\
           <devices>{devices}</devices>\
           <qemu:commandline>{args}</qemu:commandline>\
         </domain>"
    );
    let def = parse_domain(&xml).unwrap();
    let ctx = ArgvContext {
        emulator: PathBuf::from(QEMU),
        run_dir: dir.to_path_buf(),
        kvm_usable: false,
    };
    build(&def, &ctx).unwrap()
}

async fn spawn(dir: &Path, name: &str, cleanup: &mut Cleanup) -> QemuProcess {
    let cmd = command(dir, name, "", &[]);
    let p = QemuProcess::spawn(&cmd, name, &dir.join("qemu.log"), HANG_GUARD)
        .await
        .unwrap();
    cleanup.0.push(p.record());
    p
}

async fn assert_paused(socket: &Path) {
    let (mon, _events) = Monitor::connect(socket, HANG_GUARD).await.unwrap();
    let st = mon.execute(qmp::query_status {}).await.unwrap();
    assert!(
        !st.running && matches!(st.status, qmp::RunState::prelaunch),
        "{st:?}"
    );
}

fn parent_pid(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("PPid:")).unwrap();
    line["PPid:".len()..].trim().parse().unwrap()
}

#[tokio::test]
async fn spawn_reattach_and_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let p = spawn(dir.path(), "proc-basic", &mut cleanup).await;
    assert!(p.is_alive());
    assert_paused(p.qmp_socket()).await;

    // Own process group: signals aimed at the service's group do not reach QEMU.
    let qemu = Pid::from_raw(p.pid());
    assert_eq!(getpgid(Some(qemu)).unwrap(), qemu);
    assert_ne!(getpgid(Some(qemu)).unwrap(), getpgid(None).unwrap());

    let rec = p.record();
    assert_eq!(rec.domain_name, "proc-basic");
    assert_eq!(rec.qmp_socket, dir.path().join("qmp.sock"));
    let saved = dir.path().join("process.json");
    rec.save(&saved).unwrap();
    let again = QemuProcess::reattach(&ProcessRecord::load(&saved).unwrap())
        .unwrap()
        .expect("running QEMU not found again");
    assert_eq!(again.pid(), p.pid());
    assert!(again.is_alive());
    assert_paused(again.qmp_socket()).await;

    let stale = ProcessRecord {
        start_ticks: rec.start_ticks + 1,
        ..rec.clone()
    };
    assert!(QemuProcess::reattach(&stale).unwrap().is_none());
    let other_domain = ProcessRecord {
        domain_name: "proc-other".into(),
        ..rec.clone()
    };
    assert!(QemuProcess::reattach(&other_domain).unwrap().is_none());
    // A live process with the right start time that is not QEMU (this test) is refused too.
    let me = std::fs::read_to_string("/proc/self/stat").unwrap();
    let me_ticks = me[me.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let not_qemu = ProcessRecord {
        pid: std::process::id() as i32,
        start_ticks: me_ticks,
        ..rec.clone()
    };
    assert!(QemuProcess::reattach(&not_qemu).unwrap().is_none());

    p.kill(HANG_GUARD).await.unwrap();
    assert!(!p.is_alive());
    assert!(!again.is_alive());
    again.wait_gone(HANG_GUARD).await.unwrap();
    assert!(QemuProcess::reattach(&rec).unwrap().is_none());
    // Killing what is gone is a no-op.
    p.kill(HANG_GUARD).await.unwrap();
}

#[tokio::test]
async fn bad_option_fails_with_qemus_message() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = command(dir.path(), "proc-badopt", "", &["-no-such-option"]);
    let log = dir.path().join("qemu.log");
    let err = QemuProcess::spawn(&cmd, "proc-badopt", &log, HANG_GUARD)
        .await
        .unwrap_err();
    assert!(matches!(err, ProcessError::Exited { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("-no-such-option: invalid option"), "{msg}");
    assert!(msg.contains("exit code 1"), "{msg}");
    // The log keeps the command line and QEMU's complaint for later.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("--- virtplane: starting QEMU"), "{text}");
    assert!(text.contains("invalid option"), "{text}");
}

/// QEMU creates the QMP socket before it opens disks: readiness must wait for the greeting,
/// or a start with a missing disk would look successful.
#[tokio::test]
async fn missing_disk_fails_after_the_socket_exists() {
    let dir = tempfile::tempdir().unwrap();
    let disk = "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
                <source file='/nonexistent/virtplane-test.img'/>\
                <target dev='vda' bus='virtio'/></disk>";
    let cmd = command(dir.path(), "proc-nodisk", disk, &[]);
    let err = QemuProcess::spawn(&cmd, "proc-nodisk", &dir.path().join("q.log"), HANG_GUARD)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ProcessError::Exited { .. }), "{msg}");
    assert!(
        msg.contains("Could not open '/nonexistent/virtplane-test.img'"),
        "{msg}"
    );
}

/// A QEMU that never becomes ready (here: blocked opening a FIFO as its cdrom) is killed and
/// reported, not left behind.
#[tokio::test]
async fn start_timeout_kills_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("never.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let disk = format!(
        "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>\
         <source file='{}'/><target dev='hdc' bus='ide'/><readonly/></disk>",
        fifo.display()
    );
    let cmd = command(dir.path(), "proc-hang", &disk, &[]);
    let log = dir.path().join("q.log");
    let err = QemuProcess::spawn(&cmd, "proc-hang", &log, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(err, ProcessError::StartTimeout { .. }), "{err:?}");
    // The command line in the log names the domain; no QEMU for it may remain.
    let leftover = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*fifo.to_string_lossy()))
        })
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            !stat.contains(") Z ")
        })
        .collect::<Vec<_>>();
    assert!(leftover.is_empty(), "QEMU left running: {leftover:?}");
}

/// The key property: QEMU survives the death (SIGKILL) of the process that started it, and a
/// new one finds it, talks to it and stops it.
#[tokio::test]
async fn qemu_survives_its_starter_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let record_path = dir.path().join("process.json");
    let mut helper = Helper(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "helper_spawns_qemu_then_waits", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(HELPER_ENV, dir.path())
            .stdin(Stdio::null())
            // Its panics go to stderr (--nocapture); libtest's chatter is not wanted.
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = std::time::Instant::now();
    let rec = loop {
        if let Ok(rec) = ProcessRecord::load(&record_path) {
            break rec;
        }
        if let Some(status) = helper.0.try_wait().unwrap() {
            panic!("helper exited before saving a record: {status}");
        }
        assert!(start.elapsed() < HANG_GUARD, "helper never saved a record");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    cleanup.0.push(rec.clone());
    assert_eq!(parent_pid(rec.pid), helper.0.id() as i32);

    // The "service" dies without any chance to clean up.
    helper.0.kill().unwrap();
    helper.0.wait().unwrap();

    let p = QemuProcess::reattach(&rec)
        .unwrap()
        .expect("QEMU died with its starter");
    assert!(p.is_alive());
    assert_ne!(parent_pid(p.pid()), helper.0.id() as i32);
    assert_ne!(
        getpgid(Some(Pid::from_raw(p.pid()))).unwrap(),
        getpgid(None).unwrap()
    );
    assert_paused(p.qmp_socket()).await;

    // Not our child: its exit is seen through /proc, and its zombie (until PID 1 reaps it)
    // already counts as gone.
    p.kill(HANG_GUARD).await.unwrap();
    assert!(!p.is_alive());
    assert!(QemuProcess::reattach(&rec).unwrap().is_none());
}

/// Not a test on its own: the "service" of `qemu_survives_its_starter_being_killed`. Spawns a
/// QEMU, saves its record, then waits to be killed.
#[test]
fn helper_spawns_qemu_then_waits() {
    let Some(dir) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let p = rt.block_on(async {
        let cmd = command(&dir, "proc-survivor", "", &[]);
        QemuProcess::spawn(&cmd, "proc-survivor", &dir.join("qemu.log"), HANG_GUARD)
            .await
            .unwrap()
    });
    p.record().save(&dir.join("process.json")).unwrap();
    // Bounded, so that a helper whose parent vanished does not linger forever.
    std::thread::sleep(HANG_GUARD * 4);
    let _ = kill(Pid::from_raw(p.pid()), Signal::SIGKILL);
}
