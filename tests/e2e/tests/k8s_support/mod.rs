//! What the Kubernetes manifest tests share: finding `kubectl` and `kubernetes-validate`,
//! rendering an overlay of deploy/k8s/ (the dev overlay in a temp copy, with its secret
//! files made by its own make-dev-certs.sh), the rendered objects as JSON values, and small
//! readers for pod specs and container arguments.

pub mod checks;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
pub use virtplane_e2e::command::Ran;

use serde_json::Value;

/// Every external command here (kubectl, kubernetes-validate, openssl in the dev script, the
/// binaries' `--help`) is killed after this long.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The namespace every object lives in.
pub const NAMESPACE: &str = "virtplane";

pub fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/k8s")
}

/// The deployable overlays, and the base (rendered and validated, though not applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Base,
    Dev,
    Prod,
}

impl Overlay {
    pub const ALL: [Overlay; 3] = [Overlay::Base, Overlay::Dev, Overlay::Prod];

    pub fn path(self) -> &'static str {
        match self {
            Overlay::Base => "base",
            Overlay::Dev => "overlays/dev",
            Overlay::Prod => "overlays/prod",
        }
    }
}

/// Runs `command` to its end, killed (and the test failed) after [`COMMAND_TIMEOUT`].
pub fn run(command: Command) -> Ran {
    virtplane_e2e::command::run(command, COMMAND_TIMEOUT)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// Set by .ci/run: the tools must be there, so a missing one fails the test instead of
/// skipping it.
const REQUIRE_TOOLS: &str = "VIRTPLANE_REQUIRE_K8S_TOOLS";

fn required(tool: &str) {
    assert!(
        std::env::var_os(REQUIRE_TOOLS).is_none(),
        "{tool} is not installed, and {REQUIRE_TOOLS} says it must be"
    );
}

/// `kubectl` (for `kubectl kustomize`), or `None` after saying why the test is skipped.
pub fn kubectl() -> Option<PathBuf> {
    let found = on_path("kubectl");
    if found.is_none() {
        required("kubectl");
        eprintln!(
            "SKIPPED: kubectl is not installed, so deploy/k8s/ was not rendered (`kubectl \
             kustomize`); install kubectl to run this test"
        );
    }
    found
}

/// `kubernetes-validate` from `$VIRTPLANE_KUBERNETES_VALIDATE` (which must then exist; .ci/run
/// sets it to its venv's) or PATH, or `None` after saying why the check is skipped.
pub fn kubernetes_validate() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VIRTPLANE_KUBERNETES_VALIDATE") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "VIRTPLANE_KUBERNETES_VALIDATE={} does not exist",
            path.display()
        );
        return Some(path);
    }
    let found = on_path("kubernetes-validate");
    if found.is_none() {
        required("kubernetes-validate");
        eprintln!(
            "SKIPPED: kubernetes-validate is not installed (pip install kubernetes-validate; \
             .ci/run installs it), so the rendered manifests were not validated against the \
             Kubernetes schemas"
        );
    }
    found
}

/// One overlay rendered: the YAML text and its objects. Holds the temp copy (dev) alive.
pub struct Rendered {
    pub text: String,
    pub objects: Vec<Value>,
    /// The temp copy of deploy/k8s/ the dev overlay was rendered from (its secrets/ holds
    /// the CA and the tokens).
    pub tree: Option<tempfile::TempDir>,
}

impl Rendered {
    /// The dev overlay's secrets/ directory (CA certificate, `*.token`), in the temp copy.
    pub fn dev_secrets(&self) -> PathBuf {
        let tree = self
            .tree
            .as_ref()
            .expect("only the dev overlay has a temp copy");
        tree.path().join("k8s/overlays/dev/secrets")
    }
}

/// `kubectl kustomize` of `overlay`. The dev overlay is rendered from a temp copy of
/// deploy/k8s/ after running its make-dev-certs.sh there (its secretGenerator needs the
/// files; none are committed).
pub fn render(kubectl: &Path, overlay: Overlay) -> Rendered {
    let (root, tree) = if overlay == Overlay::Dev {
        let tree = tempfile::tempdir().expect("temp dir");
        let copy = tree.path().join("k8s");
        copy_tree(&k8s_dir(), &copy);
        let mut script = Command::new(copy.join("overlays/dev/make-dev-certs.sh"));
        script.arg("--force");
        let made = run(script);
        assert!(
            made.success,
            "overlays/dev/make-dev-certs.sh failed:\n{}",
            made.said()
        );
        (copy, Some(tree))
    } else {
        (k8s_dir(), None)
    };
    let mut command = Command::new(kubectl);
    command.arg("kustomize").arg(root.join(overlay.path()));
    let rendered = run(command);
    assert!(
        rendered.success,
        "kubectl kustomize {} failed:\n{}",
        overlay.path(),
        rendered.stderr
    );
    let objects = parse_objects(&rendered.stdout);
    Rendered {
        text: rendered.stdout,
        objects,
        tree,
    }
}

/// The objects of a multi-document YAML stream (`kubectl kustomize` separates documents
/// with `---` lines; inside a block scalar such a line would be indented).
pub fn parse_objects(text: &str) -> Vec<Value> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line == "---" {
            documents.push(String::new());
        } else if let Some(document) = documents.last_mut() {
            document.push_str(line);
            document.push('\n');
        }
    }
    documents
        .iter()
        .filter(|document| !document.trim().is_empty())
        .map(|document| {
            serde_yaml_ng::from_str::<Value>(document)
                .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{document}"))
        })
        .collect()
}

/// Copies a directory tree, leaving out the dev overlay's generated secrets/ (the copy
/// makes its own).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy's directory");
    for entry in std::fs::read_dir(from).expect("read deploy/k8s") {
        let entry = entry.expect("directory entry");
        let path = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            if entry.file_name() == "secrets" {
                continue;
            }
            copy_tree(&path, &target);
        } else if kind.is_file() {
            std::fs::copy(&path, &target).expect("copy a file (its mode too)");
        }
    }
}

/// `kind/name` of an object, for messages.
pub fn id(object: &Value) -> String {
    format!(
        "{}/{}",
        str_at(object, "/kind"),
        str_at(object, "/metadata/name")
    )
}

/// The string at a JSON pointer, or "" when absent.
pub fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The items of the array at a JSON pointer (none when absent).
pub fn items<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Objects of one kind.
pub fn of_kind<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objects.iter().filter(move |o| str_at(o, "/kind") == kind)
}

/// The one object of `kind` named `name`.
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| str_at(o, "/kind") == kind && str_at(o, "/metadata/name") == name)
}

/// Kinds whose `spec.template.spec` is a pod spec.
pub const WORKLOAD_KINDS: [&str; 5] = [
    "DaemonSet",
    "Deployment",
    "StatefulSet",
    "ReplicaSet",
    "Job",
];

pub fn workloads(objects: &[Value]) -> impl Iterator<Item = &Value> {
    objects
        .iter()
        .filter(|o| WORKLOAD_KINDS.contains(&str_at(o, "/kind")))
}

/// The pod spec of a workload.
pub fn pod_spec(workload: &Value) -> &Value {
    workload
        .pointer("/spec/template/spec")
        .unwrap_or(&Value::Null)
}

/// The container named `name` of a workload (in `containers`).
pub fn container<'a>(workload: &'a Value, name: &str) -> Option<&'a Value> {
    items(pod_spec(workload), "/containers")
        .iter()
        .find(|c| str_at(c, "/name") == name)
}

/// A container's command and arguments, as one list.
pub fn argv(container: &Value) -> Vec<String> {
    items(container, "/command")
        .iter()
        .chain(items(container, "/args"))
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// [`argv`] with `$(VAR)` references expanded as the kubelet does, from the container's
/// `env`: a literal value as it is, a value from the downward API or a Secret as a sample
/// (`node-1` for `spec.nodeName`), since there is no pod to read it from.
pub fn expanded_argv(container: &Value) -> Vec<String> {
    let mut words = argv(container);
    for env in items(container, "/env") {
        let reference = format!("$({})", str_at(env, "/name"));
        let value = match env.get("value").and_then(Value::as_str) {
            Some(value) => value,
            None if str_at(env, "/valueFrom/fieldRef/fieldPath") == "spec.nodeName" => "node-1",
            None => "sample",
        };
        for word in &mut words {
            *word = word.replace(&reference, value);
        }
    }
    words
}

/// Every value a container passes `flag` (`--flag VALUE` or `--flag=VALUE`), in order.
pub fn flag_values(container: &Value, flag: &str) -> Vec<String> {
    let words = argv(container);
    let mut found = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if word == flag {
            if let Some(value) = words.get(i + 1) {
                found.push(value.clone());
            }
        } else if let Some(value) = word.strip_prefix(&format!("{flag}=")) {
            found.push(value.to_owned());
        }
    }
    found
}

/// Decodes standard base64 (a Secret's `data`), whitespace ignored.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c)
            .unwrap_or_else(|| panic!("{:?} is not a base64 character", c as char));
        buffer = (buffer << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    bytes
}
