//! Every typed guest agent call (issue #6) through the gateway with virtctl, against the real
//! qemu-guest-agent 7.2 of the test guest, booted once under TCG with its root on a disk (a
//! copy of `rootfs.img` as a virtio disk with discard, so fsfreeze, fstrim, fsinfo and the
//! disk list have a real ext4 to work on), 2 vCPUs and a user-mode NIC. Then reboot and
//! shutdown through the agent, with the agent lifecycle events they cause.
//!
//! What the agent answers is tests/guest/README.md's table "Agent commands in the test
//! guest". The agent's refusals must reach the user as the agent's own words with the domain
//! named; their gRPC codes are read from the gateway's audit log. Deadlines only stop hangs.

mod guest_agent_support;

use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use guest_agent_support::{
    BOOT_DEADLINE, GuestSpec, HANG_GUARD, agent_event, audited_code, console_tail, fails_with_code,
    json, stderr, stdout, wait_agent, wait_event, wait_events,
};
use sha2::{Digest, Sha256};
use virtplane_e2e::guest::build_guest;
use virtplane_e2e::{ADMIN_TOKEN, OPERATOR_TOKEN, Stack, VIEWER_TOKEN, watch_events};

const NAME: &str = "e2e-agent";
const MAC: &str = "52:54:00:e2:a6:01";

/// The code of an agent's own refusal (GenericError), as guest.proto says.
const REFUSED: &str = "FAILED_PRECONDITION";

/// What the agent says when it refuses a command, as virtctl prints it.
fn refused(desc: &str) -> String {
    format!("error: the guest agent of domain '{NAME}' refused the command (GenericError): {desc}")
}

/// What the service says for a command the agent has disabled or lacks.
fn unsupported(desc: &str) -> String {
    format!("error: the guest agent of domain '{NAME}' does not support this: {desc}")
}

#[test]
fn every_typed_call_against_the_real_agent() {
    let guest = build_guest();
    let stack = Stack::start_with("qemu");
    let root = stack.dir.path().join("root.img");
    std::fs::copy(guest.join("rootfs.img"), &root).expect("copy rootfs.img");
    let serial = stack.dir.path().join("serial.log");
    let spec = GuestSpec {
        name: NAME,
        vcpus: 2,
        memory_mib: 256,
        root_disk: Some(&root),
        nic_mac: Some(MAC),
        serial_log: &serial,
    };
    let xml = stack.file("agent.xml", &spec.xml(&guest));
    stack.ok(&["define", &xml]);

    // The agent lifecycle event arrives when qemu-ga opens its port in the booted guest.
    let (_watcher, events) = watch_events(&stack);
    stack.ok(&["start", NAME]);
    wait_event(
        &events,
        &agent_event(NAME, "connected", "channel event"),
        BOOT_DEADLINE,
    );
    wait_agent(&stack, NAME, &serial);
    let info = stack.ok(&["dominfo", NAME]);
    assert!(info.contains("Guest agent:    connected\n"), "{info}");

    agent_identity(&stack);
    guest_information(&stack, &serial);
    filesystems(&stack);
    vcpus(&stack);
    clock(&stack);
    passwords(&stack);
    ssh_keys(&stack);
    exec(&stack);
    files(&stack);
    memory_blocks(&stack);
    passthrough_and_roles(&stack);
    power_through_the_agent(&stack, &events, &serial);
}

/// guest-ping and guest-info.
fn agent_identity(stack: &Stack) {
    assert_eq!(
        stack.ok(&["guest-ping", NAME]),
        format!("Guest agent of domain '{NAME}' is responding\n")
    );
    let info = json(stack, &["guest-agent-info", NAME]);
    assert!(
        info["version"].as_str().unwrap().starts_with("7.2."),
        "{info}"
    );
    let commands = info["commands"].as_array().unwrap();
    let command = |name: &str| {
        commands
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {info}"))
    };
    assert_eq!(command("guest-exec")["enabled"], true);
    assert_eq!(command("guest-exec")["success_response"], true);
    // Disabled on Linux by qemu-ga itself; guest-shutdown answers only by acting.
    assert_eq!(command("guest-get-devices")["enabled"], false);
    assert_eq!(command("guest-shutdown")["success_response"], false);
    let table = stack.ok(&["guest-agent-info", NAME]);
    assert!(table.starts_with("Version:        7.2."), "{table}");
    assert!(
        table.contains(&format!("Commands:       {}\n", commands.len())),
        "{table}"
    );
}

/// guestinfo with every selector, domhostname and domifaddr --source agent.
fn guest_information(stack: &Stack, serial: &std::path::Path) {
    // udhcpc gets eth0's lease a moment after the agent starts: poll for it.
    let until = std::time::Instant::now() + HANG_GUARD;
    let addresses = loop {
        let text = stack.ok(&["domifaddr", NAME, "--source", "agent"]);
        if text.contains("10.0.2.15/24") {
            break text;
        }
        assert!(
            std::time::Instant::now() < until,
            "eth0 never got its address (hang guard):\n{text}\nconsole:\n{}",
            console_tail(serial)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        addresses.contains(" lo         00:00:00:00:00:00    ipv4         127.0.0.1/8\n"),
        "{addresses}"
    );
    assert!(
        addresses.contains(&format!(" eth0       {MAC}    ipv4         10.0.2.15/24\n")),
        "{addresses}"
    );

    assert_eq!(stack.ok(&["domhostname", NAME]), "virtplane-guest\n");
    assert_eq!(
        stack.ok(&["domhostname", NAME, "--source", "agent"]),
        "virtplane-guest\n"
    );

    // Every kind at once, in virsh's layout.
    let all = stack.ok(&["guestinfo", NAME]);
    for want in [
        "user.0.name         : root\n",
        "os.id               : virtplane-guest\n",
        "os.pretty-name      : virtplane test guest (Debian kernel, busybox)\n",
        "os.machine          : x86_64\n",
        "timezone.name       : UTC\n",
        "timezone.offset     : 0\n",
        "hostname            : virtplane-guest\n",
        "fs.0.mountpoint     : /\n",
        "fs.0.fstype         : ext4\n",
        "disk.0.name         : /dev/vda\n",
        "if.0.name           : lo\n",
        "if.1.name           : eth0\n",
        &format!("if.1.hwaddr         : {MAC}\n"),
    ] {
        assert!(all.contains(want), "{want:?} missing from\n{all}");
    }

    // One selector at a time: that kind only.
    let kinds = [
        ("--user", "users"),
        ("--os", "os"),
        ("--timezone", "timezone"),
        ("--hostname", "hostname"),
        ("--filesystem", "filesystems"),
        ("--disk", "disks"),
        ("--interface", "interfaces"),
    ];
    for (flag, key) in kinds {
        let v = json(stack, &["guestinfo", NAME, flag]);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "{flag}: only domain and {key}: {v}");
        assert!(v.get(key).is_some(), "{flag}: {v}");
    }
    let users = json(stack, &["guestinfo", NAME, "--user"]);
    assert!(
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "root" && u["login_time"].is_string()),
        "{users}"
    );
    let os = json(stack, &["guestinfo", NAME, "--os"]);
    assert_eq!(os["os"]["id"], "virtplane-guest", "{os}");
    assert_eq!(os["os"]["version_id"], "12", "{os}");
    assert!(
        os["os"]["kernel_release"]
            .as_str()
            .unwrap()
            .ends_with("-amd64"),
        "{os}"
    );
    let tz = json(stack, &["guestinfo", NAME, "--timezone"]);
    assert_eq!(tz["timezone"]["name"], "UTC", "{tz}");
    assert_eq!(tz["timezone"]["offset_seconds"], 0, "{tz}");
    let host = json(stack, &["guestinfo", NAME, "--hostname"]);
    assert_eq!(host["hostname"], "virtplane-guest", "{host}");
    let fs = json(stack, &["guestinfo", NAME, "--filesystem"]);
    assert_eq!(fs["filesystems"][0]["mountpoint"], "/", "{fs}");
    assert_eq!(fs["filesystems"][0]["disks"][0]["dev"], "/dev/vda", "{fs}");
    let disks = json(stack, &["guestinfo", NAME, "--disk"]);
    assert_eq!(disks["disks"][0]["name"], "/dev/vda", "{disks}");
    assert_eq!(disks["disks"][0]["partition"], false, "{disks}");
    assert_eq!(
        disks["disks"][0]["address"]["bus_type"], "virtio",
        "{disks}"
    );
    let ifs = json(stack, &["guestinfo", NAME, "--interface"]);
    let eth0 = ifs["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "eth0")
        .unwrap_or_else(|| panic!("no eth0: {ifs}"));
    assert_eq!(eth0["hardware_address"], MAC, "{ifs}");
    assert!(
        eth0["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["type"] == "ipv4" && a["address"] == "10.0.2.15" && a["prefix"] == 24),
        "{ifs}"
    );
}

/// The freeze status, through passthrough (virtctl has no typed command for it).
fn freeze_status(stack: &Stack) -> String {
    let reply = stack.ok(&[
        "qemu-agent-command",
        NAME,
        r#"{"execute":"guest-fsfreeze-status"}"#,
    ]);
    let v: serde_json::Value = serde_json::from_str(reply.trim()).unwrap();
    v["return"].as_str().unwrap_or_default().to_owned()
}

/// domfsinfo, domfsfreeze (all, and a list), the frozen agent's refusals, domfsthaw,
/// domfstrim.
fn filesystems(stack: &Stack) {
    assert_eq!(
        stack.ok(&["domfsinfo", NAME]),
        " Mountpoint   Name   Type   Target\n\
         ------------------------------------\n \
         /            vda    ext4   vda\n"
    );
    let fs = json(stack, &["domfsinfo", NAME]);
    assert_eq!(fs[0]["type"], "ext4", "{fs}");
    assert!(fs[0]["total_bytes"].as_u64().unwrap() > 50 << 20, "{fs}");
    assert!(fs[0]["used_bytes"].as_u64().unwrap() > 0, "{fs}");
    assert_eq!(fs[0]["disks"][0]["bus_type"], "virtio", "{fs}");

    assert_eq!(freeze_status(stack), "thawed");
    assert_eq!(stack.ok(&["domfsfreeze", NAME]), "Froze 1 filesystem(s)\n");
    assert_eq!(freeze_status(stack), "frozen");
    // A frozen agent refuses everything but ping, info, status and thaw: UNIMPLEMENTED,
    // in the agent's words.
    let (again, code) = fails_with_code(
        stack,
        ADMIN_TOKEN,
        &["domfsfreeze", NAME],
        "GuestAgentService/FreezeFilesystems",
    );
    assert_eq!(
        again,
        unsupported(
            "Command guest-fsfreeze-freeze has been disabled: the agent is in frozen state"
        ) + "\n"
    );
    assert_eq!(code, "UNIMPLEMENTED");
    let out = stack.virtctl(Some(ADMIN_TOKEN), &["guest-exec", NAME, "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains(&unsupported(
            "Command guest-exec has been disabled: the agent is in frozen state"
        )),
        "{out:?}"
    );
    stack.ok(&["guest-ping", NAME]);
    assert_eq!(stack.ok(&["domfsthaw", NAME]), "Thawed 1 filesystem(s)\n");
    assert_eq!(freeze_status(stack), "thawed");
    assert_eq!(stack.ok(&["domfsthaw", NAME]), "Thawed 0 filesystem(s)\n");
    assert_eq!(stack.ok(&["domhostname", NAME]), "virtplane-guest\n");

    // A list of mount points; one the guest does not have freezes nothing.
    let frozen = json(stack, &["domfsfreeze", NAME, "--mountpoint", "/"]);
    assert_eq!(frozen["frozen"], 1, "{frozen}");
    let thawed = json(stack, &["domfsthaw", NAME]);
    assert_eq!(thawed["thawed"], 1, "{thawed}");
    assert_eq!(
        stack.ok(&["domfsfreeze", NAME, "--mountpoint", "/nonexistent"]),
        "Froze 0 filesystem(s)\n"
    );
    assert_eq!(freeze_status(stack), "thawed");

    // The first trim since the mount trims every free range; virsh prints nothing.
    let trimmed = json(stack, &["domfstrim", NAME]);
    assert_eq!(trimmed[0]["path"], "/", "{trimmed}");
    assert!(
        trimmed[0]["trimmed_bytes"].as_u64().unwrap() > 10 << 20,
        "{trimmed}"
    );
    let trimmed = json(stack, &["domfstrim", NAME, "--minimum", "1048576"]);
    assert_eq!(trimmed[0]["minimum_bytes"], 1048576, "{trimmed}");
    assert_eq!(stack.ok(&["domfstrim", NAME]), "");
}

/// guestvcpus: list, take cpu1 offline and back, cpu0 and a missing cpu refused.
fn vcpus(stack: &Stack) {
    let all_online = "vcpus          : 0-1\nonline         : 0-1\nofflinable     : 1\n";
    assert_eq!(stack.ok(&["guestvcpus", NAME]), all_online);
    assert_eq!(
        stack.ok(&["guestvcpus", NAME, "--cpulist", "1", "--disable"]),
        ""
    );
    assert_eq!(
        stack.ok(&["guestvcpus", NAME]),
        "vcpus          : 0-1\nonline         : 0\nofflinable     : 1\n"
    );
    // The guest's own view agrees.
    assert_eq!(
        stack.ok(&[
            "guest-exec",
            NAME,
            "--",
            "cat",
            "/sys/devices/system/cpu/online"
        ]),
        "0\n"
    );
    stack.ok(&["guestvcpus", NAME, "--cpulist", "1", "--enable"]);
    assert_eq!(stack.ok(&["guestvcpus", NAME]), all_online);

    let (text, code) = fails_with_code(
        stack,
        ADMIN_TOKEN,
        &["guestvcpus", NAME, "--cpulist", "0", "--disable"],
        "GuestAgentService/SetVcpus",
    );
    assert_eq!(
        text,
        refused("logical processor #0 can't be offlined") + "\n"
    );
    assert_eq!(code, REFUSED);
    let text = stack.fails(
        Some(ADMIN_TOKEN),
        &["guestvcpus", NAME, "--cpulist", "7", "--enable"],
    );
    assert!(
        text.contains(&refused(
            "open(\"/sys/devices/system/cpu/cpu7/\"): No such file or directory"
        )),
        "{text}"
    );
    assert_eq!(stack.ok(&["guestvcpus", NAME]), all_online);
}

fn now_secs() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// The guest's clock in seconds, from `domtime -o json`.
fn guest_secs(stack: &Stack) -> i64 {
    json(stack, &["domtime", NAME])["seconds"].as_i64().unwrap()
}

/// domtime: get, --pretty, --time (which also sets the RTC), --sync (from the RTC), --now.
fn clock(stack: &Stack) {
    // The guest's clock started from the host's; TCG may let it lag a little.
    let skew = (guest_secs(stack) - now_secs()).abs();
    assert!(skew < 120, "guest clock {skew} s off the host's");
    let text = stack.ok(&["domtime", NAME]);
    assert!(
        text.starts_with("Time: ") && text.trim_end()[6..].parse::<i64>().is_ok(),
        "{text}"
    );
    let pretty = stack.ok(&["domtime", NAME, "--pretty"]);
    assert!(
        pretty.len() == "Time: 2026-12-07 18:16:40\n".len() && pretty.starts_with("Time: 20"),
        "{pretty}"
    );

    const SET: i64 = 1_700_000_000;
    stack.ok(&["domtime", NAME, "--time", &SET.to_string()]);
    let after = guest_secs(stack);
    assert!((SET..SET + 120).contains(&after), "{after}");
    // qemu-ga wrote it to the RTC too (hwclock -w): syncing from the RTC keeps it.
    stack.ok(&["domtime", NAME, "--sync"]);
    let synced = guest_secs(stack);
    assert!((SET..SET + 120).contains(&synced), "{synced}");
    stack.ok(&["domtime", NAME, "--now"]);
    let skew = (guest_secs(stack) - now_secs()).abs();
    assert!(skew < 120, "after --now the guest clock is {skew} s off");
}

/// root's password hash in the guest's /etc/shadow, read with guest-file-read.
fn root_hash(stack: &Stack) -> String {
    let shadow = stack.ok(&["guest-file-read", NAME, "/etc/shadow"]);
    let root = shadow
        .lines()
        .find(|l| l.starts_with("root:"))
        .unwrap_or_else(|| panic!("no root in /etc/shadow:\n{shadow}"));
    root.split(':').nth(1).unwrap().to_owned()
}

/// set-user-password, plain and --encrypted, and for a user the guest lacks.
fn passwords(stack: &Stack) {
    assert_eq!(root_hash(stack), "*");
    assert_eq!(
        stack.ok(&["set-user-password", NAME, "root", "e2e-s3cret"]),
        format!("Password set successfully for root in {NAME}\n")
    );
    let hash = root_hash(stack);
    assert!(hash.starts_with("$6$"), "{hash}");
    // The guest's own crypt with the same salt gives the same hash: it is this password's.
    let salt = hash.split('$').nth(2).unwrap();
    assert_eq!(
        stack.ok(&[
            "guest-exec",
            NAME,
            "--",
            "mkpasswd",
            "-m",
            "sha512",
            "e2e-s3cret",
            salt
        ]),
        format!("{hash}\n")
    );
    let given = "$6$e2esalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
    stack.ok(&["set-user-password", NAME, "root", given, "--encrypted"]);
    assert_eq!(root_hash(stack), given);

    let (text, code) = fails_with_code(
        stack,
        ADMIN_TOKEN,
        &["set-user-password", NAME, "nobody-here", "x"],
        "GuestAgentService/SetUserPassword",
    );
    assert_eq!(
        text,
        refused("child process has failed to set user password") + "\n"
    );
    assert_eq!(code, REFUSED);
}

/// root's keys, sorted (the agent does not keep their order).
fn keys(stack: &Stack) -> Vec<String> {
    let v = json(stack, &["get-user-sshkeys", NAME, "root"]);
    let mut keys: Vec<String> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys
}

/// get-user-sshkeys and set-user-sshkeys: add (file and stdin), remove, --reset.
fn ssh_keys(stack: &Stack) {
    let key = |n: u32| format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2E{n:04} k{n}@e2e");
    let text = stack.fails(Some(ADMIN_TOKEN), &["get-user-sshkeys", NAME, "root"]);
    assert!(
        text.contains(&refused(
            "failed to read '/root/.ssh/authorized_keys': Failed to open file \
             “/root/.ssh/authorized_keys”: No such file or directory"
        )),
        "{text}"
    );

    let two = stack.file("two.keys", &format!("{}\n\n{}\n", key(1), key(2)));
    assert_eq!(
        stack.ok(&["set-user-sshkeys", NAME, "root", "--file", &two]),
        ""
    );
    assert_eq!(keys(stack), [key(1), key(2)]);
    let out = stack.virtctl_with_stdin(
        Some(ADMIN_TOKEN),
        &["set-user-sshkeys", NAME, "root", "--file", "-"],
        Some(&format!("{}\n", key(3))),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(keys(stack), [key(1), key(2), key(3)]);
    let listed = stack.ok(&["get-user-sshkeys", NAME, "root"]);
    assert_eq!(listed.lines().count(), 3, "{listed}");

    let one = stack.file("one.keys", &format!("{}\n", key(1)));
    stack.ok(&["set-user-sshkeys", NAME, "root", "--remove", "--file", &one]);
    assert_eq!(keys(stack), [key(2), key(3)]);
    stack.ok(&["set-user-sshkeys", NAME, "root", "--reset", "--file", &one]);
    assert_eq!(keys(stack), [key(1)]);
    // The guest made ~/.ssh private.
    let modes = stack.ok(&[
        "guest-exec",
        NAME,
        "--",
        "stat",
        "-c",
        "%a %n",
        "/root/.ssh",
        "/root/.ssh/authorized_keys",
    ]);
    assert_eq!(
        modes, "700 /root/.ssh\n600 /root/.ssh/authorized_keys\n",
        "{modes}"
    );
    stack.ok(&["set-user-sshkeys", NAME, "root", "--remove", "--file", &one]);
    assert_eq!(keys(stack), Vec::<String>::new());

    let text = stack.fails(Some(ADMIN_TOKEN), &["get-user-sshkeys", NAME, "nobody"]);
    assert!(
        text.contains(&refused("failed to lookup user 'nobody': Success")),
        "{text}"
    );

    // `--reset` without --file removes every key (virsh; virtctl's help says so too, and
    // qemu-ga takes `keys: [], reset: true`).
    stack.ok(&["set-user-sshkeys", NAME, "root", "--file", &two]);
    stack.ok(&["set-user-sshkeys", NAME, "root", "--reset"]);
    assert_eq!(keys(stack), Vec::<String>::new());
}

/// guest-exec as admin: (stdout, stderr, exit code).
fn exec(stack: &Stack) {
    let run = |args: &[&str], stdin: Option<&str>| -> Output {
        let mut all = vec!["guest-exec", NAME];
        all.extend(args);
        stack.virtctl_with_stdin(Some(ADMIN_TOKEN), &all, stdin)
    };
    // stdout, stderr and a non-zero exit: virtctl exits with the program's code.
    let out = run(&["--", "sh", "-c", "echo out; echo err >&2; exit 3"], None);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    let out = run(&["--", "sh", "-c", "exit 0"], None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // A signal: 128 + N.
    let out = run(&["--", "sh", "-c", "kill -9 $$"], None);
    assert_eq!(out.status.code(), Some(137), "{out:?}");

    // stdin from a file and from virtctl's stdin.
    let input = stack.file("stdin.txt", "line one\nline two\n");
    let out = run(&["--stdin", &input, "--", "wc", "-l"], None);
    assert_eq!(stdout(&out).trim(), "2", "{out:?}");
    let out = run(
        &["--stdin", "-", "--", "tr", "a-z", "A-Z"],
        Some("piped in\n"),
    );
    assert_eq!(stdout(&out), "PIPED IN\n", "{out:?}");

    // --env: the program gets only these.
    let out = run(
        &[
            "--env",
            "E2E_A=alpha",
            "--env",
            "E2E_B=two words",
            "--",
            "/bin/sh",
            "-c",
            "echo \"$E2E_A|$E2E_B|${HOME:-no-home}\"",
        ],
        None,
    );
    assert_eq!(stdout(&out), "alpha|two words|no-home\n", "{out:?}");

    // Arguments reach the program untouched.
    let out = run(&["--", "printf", "%s|", "a b", "--flag", "*", ""], None);
    assert_eq!(stdout(&out), "a b|--flag|*||", "{out:?}");

    let json_out = run(&["-o", "json", "--", "sh", "-c", "echo j; exit 4"], None);
    assert_eq!(json_out.status.code(), Some(4), "{json_out:?}");
    let v: serde_json::Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(v["exit_code"], 4, "{v}");
    assert_eq!(v["stdout"], "j\n", "{v}");
    assert!(v["pid"].as_i64().unwrap() > 1, "{v}");

    // A program the guest does not have: virtctl's own failure (1), in the agent's words.
    let (text, code) = fails_with_code(
        stack,
        ADMIN_TOKEN,
        &["guest-exec", NAME, "--", "/nonexistent"],
        "GuestAgentService/Exec",
    );
    assert_eq!(
        text,
        refused(
            "Guest agent command failed, error was 'Failed to execute child process \
             “/nonexistent” (No such file or directory)'"
        ) + "\n"
    );
    assert_eq!(code, REFUSED);
    let out = run(&["--", "/nonexistent"], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

/// Bytes that are the same on every run, every value from 0 to 255 among them.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

/// guest-file-write then guest-file-read: identical bytes, --append, --offset/--length.
fn files(stack: &Stack) {
    let data = pseudo_random(300_000);
    let local = stack.dir.path().join("blob.bin");
    std::fs::write(&local, &data).unwrap();
    let local = local.display().to_string();
    let path = "/tmp/e2e-blob";
    assert_eq!(
        stack.ok(&["guest-file-write", NAME, path, "--file", &local]),
        format!("Wrote 300000 bytes to {path} in domain '{NAME}'\n")
    );
    let read = |args: &[&str]| -> Vec<u8> {
        let mut all = vec!["guest-file-read", NAME, path];
        all.extend(args);
        let out = stack.virtctl(Some(ADMIN_TOKEN), &all);
        assert!(out.status.success(), "{all:?}: {out:?}");
        out.stdout
    };
    assert!(read(&[]) == data, "the bytes read back differ");

    let out = stack.virtctl_with_stdin(
        Some(ADMIN_TOKEN),
        &["guest-file-write", NAME, path, "--append"],
        Some("appended\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let mut expected = data.clone();
    expected.extend_from_slice(b"appended\n");
    assert_eq!(read(&["--offset", "300000"]), b"appended\n");
    assert_eq!(
        read(&["--offset", "1000", "--length", "7"]),
        &data[1000..1007]
    );
    assert_eq!(read(&["--length", "3"]), &data[..3]);
    // The guest's own checksum of the file agrees.
    let sum = stack.ok(&["guest-exec", NAME, "--", "sha256sum", path]);
    assert_eq!(
        sum,
        format!("{}  {path}\n", hex::encode(Sha256::digest(&expected)))
    );

    // Replacing, not appending, by default.
    let out = stack.virtctl_with_stdin(
        Some(ADMIN_TOKEN),
        &["guest-file-write", NAME, path],
        Some("short"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(read(&[]), b"short");

    let text = stack.fails(
        Some(ADMIN_TOKEN),
        &["guest-file-read", NAME, "/nonexistent/x"],
    );
    assert_eq!(
        text,
        refused("failed to open file '/nonexistent/x' (mode: 'r'): No such file or directory")
            + "\n"
    );
    let text = stack.fails(
        Some(ADMIN_TOKEN),
        &["guest-file-write", NAME, "/nonexistent/x", "--file", &local],
    );
    assert!(
        text.contains("failed to open file '/nonexistent/x' (mode: 'w')"),
        "{text}"
    );
}

/// Memory blocks, through passthrough (virtctl has no typed command for them).
fn memory_blocks(stack: &Stack) {
    let agent = |command: &str| -> serde_json::Value {
        let reply = stack.ok(&["qemu-agent-command", NAME, command]);
        serde_json::from_str(reply.trim()).unwrap_or_else(|e| panic!("{e}: {reply}"))
    };
    let info = agent(r#"{"execute":"guest-get-memory-block-info"}"#);
    assert_eq!(info["return"]["size"], 134_217_728, "{info}");
    let blocks = agent(r#"{"execute":"guest-get-memory-blocks"}"#);
    let blocks = blocks["return"].as_array().unwrap();
    assert!(
        !blocks.is_empty() && blocks.iter().all(|b| b["online"] == true),
        "{blocks:?}"
    );
    let set = agent(
        r#"{"execute":"guest-set-memory-blocks","arguments":{"mem-blks":[
            {"phys-index":0,"online":true},{"phys-index":4096,"online":false}]}}"#,
    );
    assert_eq!(set["return"][0]["response"], "success", "{set}");
    assert_eq!(set["return"][1]["response"], "not-found", "{set}");
}

/// Raw passthrough for the admin only; typed calls for operators, not viewers.
fn passthrough_and_roles(stack: &Stack) {
    let reply = stack.ok(&["qemu-agent-command", NAME, r#"{"execute":"guest-info"}"#]);
    let v: serde_json::Value = serde_json::from_str(reply.trim()).unwrap();
    assert!(v["return"]["version"].is_string(), "{reply}");
    assert!(
        v["return"]["supported_commands"]
            .as_array()
            .is_some_and(|c| c.len() > 30),
        "{reply}"
    );
    let pretty = stack.ok(&[
        "qemu-agent-command",
        NAME,
        "--pretty",
        r#"{"execute":"guest-get-host-name"}"#,
    ]);
    assert_eq!(
        pretty,
        "{\n  \"return\": {\n    \"host-name\": \"virtplane-guest\"\n  }\n}\n"
    );
    for (token, role) in [(OPERATOR_TOKEN, "operator"), (VIEWER_TOKEN, "viewer")] {
        let (text, code) = fails_with_code(
            stack,
            token,
            &["qemu-agent-command", NAME, r#"{"execute":"guest-info"}"#],
            "GuestAgentService/Command",
        );
        assert!(
            text.contains("permission denied")
                && text.contains(&format!("(role {role}) lacks 'domain:passthrough'")),
            "{role}: {text}"
        );
        assert_eq!(code, "PERMISSION_DENIED");
    }
    let text = stack.fails(Some(VIEWER_TOKEN), &["domhostname", NAME]);
    assert!(
        text.contains("permission denied") && text.contains("lacks 'domain:write'"),
        "{text}"
    );
    let out = stack.virtctl(Some(OPERATOR_TOKEN), &["domhostname", NAME]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "virtplane-guest\n");

    // The agent's own refusals of raw commands: unknown, and disabled.
    let (text, code) = fails_with_code(
        stack,
        ADMIN_TOKEN,
        &[
            "qemu-agent-command",
            NAME,
            r#"{"execute":"guest-nonexistent-command"}"#,
        ],
        "GuestAgentService/Command",
    );
    assert_eq!(
        text,
        unsupported("The command guest-nonexistent-command has not been found") + "\n"
    );
    assert_eq!(code, "UNIMPLEMENTED");
    let text = stack.fails(
        Some(ADMIN_TOKEN),
        &[
            "qemu-agent-command",
            NAME,
            r#"{"execute":"guest-get-devices"}"#,
        ],
    );
    assert!(
        text.contains(&unsupported("Command guest-get-devices has been disabled")),
        "{text}"
    );
}

/// reboot --mode agent (the agent goes and comes back), then shutdown --mode agent.
fn power_through_the_agent(
    stack: &Stack,
    events: &std::sync::mpsc::Receiver<String>,
    serial: &std::path::Path,
) {
    let before = stack.audit_lines().len();
    assert_eq!(
        stack.ok(&["reboot", NAME, "--mode", "agent"]),
        format!("Domain '{NAME}' is being rebooted\n")
    );
    assert_eq!(audited_code(stack, before, "DomainService/Reboot"), "OK");
    // The agent's port closes as the guest resets, and opens again once it is back.
    let mut seen = wait_event(
        events,
        &agent_event(NAME, "disconnected", "channel event"),
        HANG_GUARD,
    );
    seen.extend(wait_event(
        events,
        &agent_event(NAME, "connected", "channel event"),
        BOOT_DEADLINE,
    ));
    let reboot = format!("event 'reboot' for domain '{NAME}'");
    assert!(seen.contains(&reboot), "{seen:#?}");
    wait_agent(stack, NAME, serial);
    assert_eq!(stack.ok(&["domstate", NAME]), "running\n");
    assert_eq!(stack.ok(&["domhostname", NAME]), "virtplane-guest\n");

    assert_eq!(
        stack.ok(&["shutdown", NAME, "--mode", "agent"]),
        format!("Domain '{NAME}' is being shutdown\n")
    );
    // The agent's port closes as the guest goes down, or QEMU exits first: either way the
    // agent is announced gone.
    let disconnected =
        format!("event 'agent-lifecycle' for domain '{NAME}': state: 'disconnected'");
    let stopped = format!("event 'lifecycle' for domain '{NAME}': Stopped Shutdown");
    let seen = wait_events(events, &[&disconnected, &stopped], HANG_GUARD);
    let line = seen.iter().find(|l| l.contains(&disconnected)).unwrap();
    assert!(
        line.ends_with("reason: 'channel event'") || line.ends_with("reason: 'domain stopped'"),
        "{line}"
    );
    assert_eq!(stack.ok(&["domstate", NAME]), "shut off\n");
    let text = stack.fails(Some(ADMIN_TOKEN), &["guest-ping", NAME]);
    assert!(
        text.contains(&format!("domain '{NAME}' is not running")),
        "{text}"
    );
}
