//! The binary as a user runs it, without a server: help, global flag placement, the errors
//! for a missing or unreachable server, config file handling, completions. (End-to-end runs
//! against real services live with the deploy tests.)

use assert_cmd::Command;

/// virtctl with a clean environment, so the developer's own config or exported variables
/// cannot change the outcome.
fn virtctl(config_dir: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("virtctl").unwrap();
    cmd.env_remove("VIRTPLANE_SERVER")
        .env_remove("VIRTPLANE_TOKEN")
        .env_remove("VIRTCTL_CONFIG")
        .env("XDG_CONFIG_HOME", config_dir)
        .env("HOME", config_dir);
    cmd
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_works() {
    let dir = tempfile::tempdir().unwrap();
    let out = virtctl(dir.path()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "list",
        "dominfo",
        "domstate",
        "define",
        "undefine",
        "create",
        "start",
        "shutdown",
        "destroy",
        "reboot",
        "reset",
        "suspend",
        "resume",
        "dumpxml",
        "setvcpus",
        "vcpucount",
        "setmem",
        "setmaxmem",
        "autostart",
        "event",
        "domhostname",
        "domfsinfo",
        "domfsfreeze",
        "domfsthaw",
        "domfstrim",
        "domtime",
        "set-user-password",
        "guestinfo",
        "guestvcpus",
        "get-user-sshkeys",
        "set-user-sshkeys",
        "guest-exec",
        "guest-file-read",
        "guest-file-write",
        "qemu-agent-command",
        "guest-agent-timeout",
        "guest-ping",
        "guest-agent-info",
        "version",
        "nodeinfo",
        "completion",
    ] {
        assert!(text.contains(cmd), "--help lacks {cmd}:\n{text}");
    }
}

#[test]
fn missing_server_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = virtctl(dir.path()).arg("list").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_of(&out).trim_end(),
        "error: no server given: pass --server or set VIRTPLANE_SERVER (deploy/local/up.sh writes it to <state-dir>/env)"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn output_flag_before_and_after_command() {
    let dir = tempfile::tempdir().unwrap();
    // Both parse (no usage error, exit 2); they fail later for want of a server (exit 1).
    for args in [&["-o", "json", "list"][..], &["list", "-o", "json"][..]] {
        let out = virtctl(dir.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains("no server given"), "{args:?}");
    }
    let out = virtctl(dir.path())
        .args(["list", "-o", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreachable_socket_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = virtctl(dir.path())
        .args(["list", "--server", "unix:/nonexistent.sock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.starts_with("error: cannot reach server unix:/nonexistent.sock: "),
        "{err}"
    );
}

#[test]
fn server_from_env_and_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = virtctl(dir.path())
        .env("VIRTPLANE_SERVER", "unix:/nonexistent-env.sock")
        .arg("dominfo")
        .arg("web")
        .output()
        .unwrap();
    assert!(stderr_of(&out).contains("unix:/nonexistent-env.sock"));

    let cfg = dir.path().join("virtctl");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.yaml"),
        "server: unix:/nonexistent-file.sock\n",
    )
    .unwrap();
    let out = virtctl(dir.path()).arg("version").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("unix:/nonexistent-file.sock"));

    // The flag beats both.
    let out = virtctl(dir.path())
        .env("VIRTPLANE_SERVER", "unix:/nonexistent-env.sock")
        .args(["--server", "unix:/nonexistent-flag.sock", "nodeinfo"])
        .output()
        .unwrap();
    assert!(stderr_of(&out).contains("unix:/nonexistent-flag.sock"));
}

#[test]
fn malformed_config_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, "server: [unclosed\n").unwrap();
    let out = virtctl(dir.path())
        .env("VIRTCTL_CONFIG", &path)
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.starts_with("error: malformed config file "), "{err}");
    assert!(err.contains("broken.yaml"), "{err}");
}

#[test]
fn bad_size_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = virtctl(dir.path())
        .args(["setmem", "web", "12Q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("12Q"));
}

#[test]
fn missing_define_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // The file is read before any call, so its error wins over the unreachable server.
    let out = virtctl(dir.path())
        .args([
            "define",
            "/nonexistent/web.xml",
            "--server",
            "unix:/nonexistent.sock",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.starts_with("error: cannot read /nonexistent/web.xml: "),
        "{err}"
    );
}

#[test]
fn completions() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = virtctl(dir.path())
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr_of(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("virtctl"), "{shell}");
        assert!(text.contains("setvcpus"), "{shell}");
    }
}

#[test]
fn closed_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // `virtctl completion bash | head -c1`: the reader leaves early.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("virtctl"))
        .args(["completion", "bash"])
        .env("HOME", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("panicked"));
}
