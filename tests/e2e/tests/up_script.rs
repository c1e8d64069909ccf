//! deploy/local/up.sh and down.sh as a new user runs them: bring the stack up detached, use
//! it with the env file's tokens, run up.sh again (nothing restarted, same tokens), kill a
//! daemon and run up.sh again (it comes back with its state), then down.sh.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use virtplane_e2e::{bin_dir, binary, domain_xml};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

fn script(name: &str, state_dir: &Path, extra: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo().join("deploy/local").join(name))
        .arg("--state-dir")
        .arg(state_dir)
        .args(extra)
        .env("VIRTPLANE_BIN_DIR", bin_dir())
        .output()
        .expect("run script")
}

fn env_file(state_dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(state_dir.join("env"))
        .expect("env file")
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("export ")?;
            let (name, value) = rest.split_once('=')?;
            Some((name.to_owned(), value.trim_matches('\'').to_owned()))
        })
        .collect()
}

fn virtctl(env: &[(String, String)], token_var: &str, args: &[&str]) -> Output {
    let get = |name: &str| {
        env.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} missing from env file"))
    };
    Command::new(binary("virtctl"))
        .env("VIRTCTL_CONFIG", "/nonexistent/virtctl.yaml")
        .env("VIRTPLANE_SERVER", get("VIRTPLANE_SERVER"))
        .env("VIRTPLANE_TOKEN", get(token_var))
        .args(args)
        .output()
        .expect("virtctl")
}

fn pid(state_dir: &Path, binary: &str) -> i32 {
    std::fs::read_to_string(state_dir.join("run").join(format!("{binary}.pid")))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

struct Down(PathBuf);
impl Drop for Down {
    fn drop(&mut self) {
        let _ = script("down.sh", &self.0, &[]);
    }
}

#[test]
fn up_again_down() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state_dir = dir.path().join("vp");
    let _down = Down(state_dir.clone());

    let up = script("up.sh", &state_dir, &["--driver", "test", "--detach"]);
    assert!(
        up.status.success(),
        "up.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&up.stdout),
        String::from_utf8_lossy(&up.stderr)
    );
    let env = env_file(&state_dir);
    let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "VIRTPLANE_SERVER",
            "VIRTPLANE_TOKEN",
            "VIRTPLANE_OPERATOR_TOKEN",
            "VIRTPLANE_VIEWER_TOKEN"
        ]
    );
    let list = virtctl(&env, "VIRTPLANE_TOKEN", &["list", "--all"]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("test"),
        "{list:?}"
    );
    let file = dir.path().join("kept.xml");
    std::fs::write(&file, domain_xml("kept")).expect("xml");
    assert!(
        virtctl(
            &env,
            "VIRTPLANE_TOKEN",
            &["define", file.to_str().expect("utf-8")]
        )
        .status
        .success()
    );
    let viewer = virtctl(&env, "VIRTPLANE_VIEWER_TOKEN", &["start", "kept"]);
    assert!(!viewer.status.success());

    // Again: nothing restarted, same tokens and addresses.
    let domaind = pid(&state_dir, "virtplane-domaind");
    let again = script("up.sh", &state_dir, &["--detach"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(pid(&state_dir, "virtplane-domaind"), domaind);
    assert_eq!(env_file(&state_dir), env);

    // A killed service comes back with its state.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(domaind),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    while std::fs::read_to_string(format!("/proc/{domaind}/stat"))
        .is_ok_and(|s| !s.contains(") Z "))
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let revived = script("up.sh", &state_dir, &["--detach"]);
    assert!(
        revived.status.success(),
        "{}",
        String::from_utf8_lossy(&revived.stderr)
    );
    assert_ne!(pid(&state_dir, "virtplane-domaind"), domaind);
    let list = virtctl(&env, "VIRTPLANE_TOKEN", &["list", "--all"]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("kept"),
        "{list:?}"
    );

    let down = script("down.sh", &state_dir, &[]);
    assert!(down.status.success());
    assert!(!state_dir.join("run/virtplane-domaind.pid").exists());
    let after = virtctl(&env, "VIRTPLANE_TOKEN", &["list"]);
    assert!(!after.status.success(), "the stack is down");
}
