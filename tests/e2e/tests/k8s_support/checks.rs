//! The checks on a rendered overlay: what issue #7 asks of the Kubernetes deployment, read
//! from the objects `kubectl kustomize` produced. [`check`] returns every problem found, each
//! naming the object (and container) and what is missing, so one failing run lists them all.
//! It is pure (no cluster, no binaries), so a test can also feed it broken copies and see
//! each check fail.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{
    NAMESPACE, argv, container, find, flag_values, id, items, of_kind, pod_spec, str_at, workloads,
};

pub const NODE: &str = "virtplane-node";
pub const GATEWAY: &str = "virtplane-gateway";

/// Each node service: its name in `--node-dns`, its container, its mutual-TLS gRPC port and
/// its metrics port.
pub const NODE_SERVICES: [(&str, &str, u16, u16); 3] = [
    ("domain", "domaind", 7101, 9101),
    ("network", "networkd", 7102, 9102),
    ("storage", "storaged", 7103, 9103),
];
/// The gateway's port for users and its metrics port.
pub const GATEWAY_PORT: u16 = 7443;
pub const GATEWAY_METRICS_PORT: u16 = 9100;

/// The Secrets the workloads use, by their names before kustomize's hash suffix.
pub const NODE_TLS_SECRET: &str = "virtplane-node-tls";
pub const GATEWAY_TLS_SECRET: &str = "virtplane-gateway-tls";
pub const GATEWAY_SERVER_TLS_SECRET: &str = "virtplane-gateway-server-tls";
pub const TOKENS_SECRET: &str = "virtplane-gateway-tokens";
pub const SECRETS: [&str; 4] = [
    NODE_TLS_SECRET,
    GATEWAY_TLS_SECRET,
    GATEWAY_SERVER_TLS_SECRET,
    TOKENS_SECRET,
];

/// Where an overlay's Secrets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// secretGenerator: every Secret is in the output, with a hashed name.
    Generated,
    /// Created beforehand in the cluster: no Secret in the output, the workloads name them
    /// as [`SECRETS`] spells them.
    Existing,
}

/// What differs between overlays.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    pub gateway_replicas: u64,
    /// Every container's image reference.
    pub image: &'static str,
    pub secrets: SecretSource,
}

/// Every problem with the rendered `objects`; empty when all is well.
pub fn check(objects: &[Value], expect: &Expect) -> Vec<String> {
    let mut problems = Vec::new();
    namespace_and_kinds(objects, &mut problems);
    for workload in workloads(objects) {
        pod_basics(objects, workload, expect, &mut problems);
        for container in items(pod_spec(workload), "/containers") {
            probes(workload, container, &mut problems);
        }
    }
    references(objects, expect, &mut problems);
    hashed_names(objects, &mut problems);
    node_daemonset(objects, &mut problems);
    node_service(objects, &mut problems);
    gateway_deployment(objects, expect, &mut problems);
    disruption_budget(objects, expect, &mut problems);
    node_network_policy(objects, &mut problems);
    gateway_network_policy(objects, &mut problems);
    problems
}

fn namespace_and_kinds(objects: &[Value], problems: &mut Vec<String>) {
    if find(objects, "Namespace", NAMESPACE).is_none() {
        problems.push(format!("no Namespace {NAMESPACE}"));
    }
    for object in objects {
        let kind = str_at(object, "/kind");
        if kind == "CustomResourceDefinition" {
            problems.push(format!("{}: no CRDs are wanted", id(object)));
        }
        let cluster_scoped = matches!(
            kind,
            "Namespace" | "ClusterRole" | "ClusterRoleBinding" | "CustomResourceDefinition"
        );
        if !cluster_scoped && str_at(object, "/metadata/namespace") != NAMESPACE {
            problems.push(format!(
                "{}: in namespace {:?}, not {NAMESPACE}",
                id(object),
                str_at(object, "/metadata/namespace")
            ));
        }
    }
}

/// Whether `selector` (a label selector: matchLabels only) selects pods labelled `labels`.
/// An empty selector selects everything; matchExpressions are not understood, so a selector
/// with them selects nothing here (and the check that needed it fails, saying so).
fn selects(selector: &Value, labels: &Value) -> bool {
    if !items(selector, "/matchExpressions").is_empty() {
        return false;
    }
    selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|wanted| wanted.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

fn pod_labels(workload: &Value) -> &Value {
    workload
        .pointer("/spec/template/metadata/labels")
        .unwrap_or(&Value::Null)
}

/// Init containers and containers.
fn all_containers(workload: &Value) -> impl Iterator<Item = &Value> {
    let spec = pod_spec(workload);
    items(spec, "/initContainers")
        .iter()
        .chain(items(spec, "/containers"))
}

fn pod_basics(objects: &[Value], workload: &Value, expect: &Expect, problems: &mut Vec<String>) {
    let who = id(workload);
    let spec = pod_spec(workload);
    if spec.get("automountServiceAccountToken") != Some(&Value::Bool(false)) {
        problems.push(format!(
            "{who}: pod spec lacks automountServiceAccountToken: false"
        ));
    }
    let account = str_at(spec, "/serviceAccountName");
    match find(objects, "ServiceAccount", account) {
        _ if account.is_empty() || account == "default" => problems.push(format!(
            "{who}: no serviceAccountName of its own (one ServiceAccount per workload)"
        )),
        None => problems.push(format!(
            "{who}: its ServiceAccount {account} is not in the output"
        )),
        Some(sa) if sa.get("automountServiceAccountToken") != Some(&Value::Bool(false)) => problems
            .push(format!(
                "ServiceAccount/{account}: lacks automountServiceAccountToken: false"
            )),
        Some(_) => {}
    }
    for container in all_containers(workload) {
        let name = str_at(container, "/name");
        for resource in ["cpu", "memory"] {
            let request = container.pointer(&format!("/resources/requests/{resource}"));
            if request.is_none_or(|r| r.is_null() || r.as_str() == Some("")) {
                problems.push(format!(
                    "{who} container {name}: no resources.requests.{resource}"
                ));
            }
        }
        let image = str_at(container, "/image");
        if image != expect.image {
            problems.push(format!(
                "{who} container {name}: image {image:?}, expected {:?}",
                expect.image
            ));
        }
    }
}

/// The port of a `HOST:PORT` value.
fn port_of(address: &str) -> Option<u16> {
    address.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

/// gRPC liveness and readiness probes on the port of the container's `--health-listen`
/// (plain gRPC: the kubelet's probe cannot do TLS, so the TLS port cannot answer it).
fn probes(workload: &Value, container: &Value, problems: &mut Vec<String>) {
    let who = format!("{} container {}", id(workload), str_at(container, "/name"));
    let health = flag_values(container, "--health-listen");
    let health_port = health.first().and_then(|a| port_of(a));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(probe_value) = container.get(probe) else {
            if probe != "startupProbe" {
                problems.push(format!("{who}: no {probe} (a gRPC probe is wanted)"));
            }
            continue;
        };
        let Some(port) = probe_value.pointer("/grpc/port").and_then(Value::as_u64) else {
            problems.push(format!("{who}: {probe} is not a gRPC probe (grpc.port)"));
            continue;
        };
        match health_port {
            None => problems.push(format!(
                "{who}: {probe} probes port {port}, but the container passes no \
                 --health-listen HOST:PORT (the kubelet's gRPC probe speaks plain gRPC and \
                 the TCP listeners are TLS)"
            )),
            Some(health) if u64::from(health) != port => problems.push(format!(
                "{who}: {probe} probes port {port}, but --health-listen is on port {health}"
            )),
            Some(_) => {}
        }
    }
}

/// The name a generated object had before kustomize appended `-<hash>`.
fn unhashed(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((stem, hash)) if is_kustomize_hash(hash) => stem,
        _ => name,
    }
}

/// kustomize's name suffix: 10 characters of a hex digest with 0, 1, 3, a, e replaced by
/// g, h, k, m, t (no vowels, no look-alikes).
fn is_kustomize_hash(text: &str) -> bool {
    text.len() == 10 && text.chars().all(|c| "2456789bcdfghkmt".contains(c))
}

/// ConfigMaps and Secrets a workload names (volumes, envFrom, env valueFrom).
fn referenced(workload: &Value, kind: &str) -> BTreeSet<String> {
    let spec = pod_spec(workload);
    let mut names = BTreeSet::new();
    let (volume_key, volume_name, from_key, key_ref) = match kind {
        "ConfigMap" => ("configMap", "name", "configMapRef", "configMapKeyRef"),
        _ => ("secret", "secretName", "secretRef", "secretKeyRef"),
    };
    for volume in items(spec, "/volumes") {
        if let Some(source) = volume.get(volume_key) {
            names.insert(str_at(source, &format!("/{volume_name}")).to_owned());
        }
    }
    for container in all_containers(workload) {
        for from in items(container, "/envFrom") {
            if let Some(source) = from.get(from_key) {
                names.insert(str_at(source, "/name").to_owned());
            }
        }
        for env in items(container, "/env") {
            if let Some(source) = env.pointer(&format!("/valueFrom/{key_ref}")) {
                names.insert(str_at(source, "/name").to_owned());
            }
        }
    }
    names
}

fn references(objects: &[Value], expect: &Expect, problems: &mut Vec<String>) {
    let mut secrets_used = BTreeSet::new();
    for workload in workloads(objects) {
        for name in referenced(workload, "ConfigMap") {
            if find(objects, "ConfigMap", &name).is_none() {
                problems.push(format!(
                    "{}: names ConfigMap {name}, which is not in the output",
                    id(workload)
                ));
            }
        }
        for name in referenced(workload, "Secret") {
            if expect.secrets == SecretSource::Generated && find(objects, "Secret", &name).is_none()
            {
                problems.push(format!(
                    "{}: names Secret {name}, which the overlay does not generate",
                    id(workload)
                ));
            }
            secrets_used.insert(unhashed(&name).to_owned());
        }
    }
    let expected: BTreeSet<String> = SECRETS.iter().map(|s| (*s).to_owned()).collect();
    if secrets_used != expected {
        problems.push(format!(
            "the workloads use the Secrets {secrets_used:?}, expected {expected:?} (the \
             README and the prod overlay list these)"
        ));
    }
    if expect.secrets == SecretSource::Existing {
        for secret in of_kind(objects, "Secret") {
            problems.push(format!(
                "{}: this overlay uses existing Secrets, and applying one would overwrite it",
                id(secret)
            ));
        }
    }
}

fn hashed_names(objects: &[Value], problems: &mut Vec<String>) {
    let generated: Vec<&Value> = of_kind(objects, "ConfigMap")
        .chain(of_kind(objects, "Secret"))
        .collect();
    if of_kind(objects, "ConfigMap").next().is_none() {
        problems.push("no ConfigMap: configuration is wanted as generated ConfigMaps".into());
    }
    for object in generated {
        let name = str_at(object, "/metadata/name");
        if unhashed(name) == name {
            problems.push(format!(
                "{}: name without kustomize's content hash suffix (use configMapGenerator / \
                 secretGenerator, so a change rolls the pods)",
                id(object)
            ));
        }
    }
}

/// The volume mounted at `path` in `container` (a mount at `path` or at a parent of it).
fn volume_at<'a>(workload: &'a Value, container: &Value, path: &str) -> Option<&'a Value> {
    let mount = items(container, "/volumeMounts")
        .iter()
        .filter(|m| {
            let at = str_at(m, "/mountPath").trim_end_matches('/');
            path == at || path.starts_with(&format!("{at}/"))
        })
        .max_by_key(|m| str_at(m, "/mountPath").len())?;
    let name = str_at(mount, "/name");
    items(pod_spec(workload), "/volumes")
        .iter()
        .find(|v| str_at(v, "/name") == name)
}

fn mount_of<'a>(container: &'a Value, mount_path: &str) -> Option<&'a Value> {
    items(container, "/volumeMounts")
        .iter()
        .find(|m| str_at(m, "/mountPath") == mount_path)
}

/// Each flag's file lies in a mount of the Secret `secret`.
fn files_from_secret(
    workload: &Value,
    container: &Value,
    flags: &[&str],
    secret: &str,
    problems: &mut Vec<String>,
) {
    let who = format!("{} container {}", id(workload), str_at(container, "/name"));
    for flag in flags {
        let values = flag_values(container, flag);
        let [file] = values.as_slice() else {
            problems.push(format!("{who}: expected one {flag}, found {values:?}"));
            continue;
        };
        let source = volume_at(workload, container, file)
            .map(|v| unhashed(str_at(v, "/secret/secretName")).to_owned());
        if source.as_deref() != Some(secret) {
            problems.push(format!(
                "{who}: {flag} {file} is not in a mount of the Secret {secret}"
            ));
        }
    }
}

fn is_true(value: &Value, pointer: &str) -> bool {
    value.pointer(pointer) == Some(&Value::Bool(true))
}

fn node_daemonset(objects: &[Value], problems: &mut Vec<String>) {
    let Some(node) = find(objects, "DaemonSet", NODE) else {
        problems.push(format!("no DaemonSet {NODE}"));
        return;
    };
    let who = id(node);
    let spec = pod_spec(node);
    for (key, want) in [
        ("/hostNetwork", Value::Bool(true)),
        ("/hostPID", Value::Bool(true)),
        ("/dnsPolicy", Value::from("ClusterFirstWithHostNet")),
    ] {
        if spec.pointer(key) != Some(&want) {
            problems.push(format!(
                "{who}: pod spec{} must be {want}",
                key.replace('/', ".")
            ));
        }
    }
    let names: BTreeSet<&str> = items(spec, "/containers")
        .iter()
        .map(|c| str_at(c, "/name"))
        .collect();
    let wanted: BTreeSet<&str> = NODE_SERVICES.iter().map(|s| s.1).collect();
    if names != wanted {
        problems.push(format!(
            "{who}: containers {names:?}, expected {wanted:?} in one pod"
        ));
    }
    for container in all_containers(node) {
        let name = str_at(container, "/name");
        let privileged = is_true(container, "/securityContext/privileged");
        if privileged && !matches!(name, "domaind" | "networkd") {
            problems.push(format!(
                "{who} container {name}: privileged, but only domaind and networkd need it"
            ));
        }
    }

    for (service, name, port, metrics_port) in NODE_SERVICES {
        let Some(container) = container(node, name) else {
            continue;
        };
        let who = format!("{who} container {name}");
        let root = service != "storage";
        let user = container.pointer("/securityContext/runAsUser");
        if root && user != Some(&Value::from(0)) {
            problems.push(format!("{who}: needs securityContext.runAsUser: 0"));
        }
        if !root {
            if !is_true(container, "/securityContext/runAsNonRoot")
                || user.is_none_or(|u| u == &Value::from(0))
            {
                problems.push(format!(
                    "{who}: must run as non-root (runAsNonRoot: true and a runAsUser other than 0)"
                ));
            }
            if container.pointer("/securityContext/allowPrivilegeEscalation")
                != Some(&Value::Bool(false))
                || !items(container, "/securityContext/capabilities/add").is_empty()
            {
                problems.push(format!(
                    "{who}: must not escalate privileges nor add capabilities"
                ));
            }
        }
        let listen = flag_values(container, "--listen");
        let tcp = format!("0.0.0.0:{port}");
        if !listen.contains(&tcp) {
            problems.push(format!("{who}: no --listen {tcp} (found {listen:?})"));
        }
        let metrics = flag_values(container, "--metrics-listen");
        if metrics != [format!("0.0.0.0:{metrics_port}")] {
            problems.push(format!(
                "{who}: --metrics-listen {metrics:?}, expected 0.0.0.0:{metrics_port}"
            ));
        }
        if argv(container).iter().any(|a| a == "--insecure-tcp") {
            problems.push(format!(
                "{who}: --insecure-tcp would give every peer full access"
            ));
        }
        files_from_secret(
            node,
            container,
            &["--tls-cert", "--tls-key", "--tls-client-ca"],
            NODE_TLS_SECRET,
            problems,
        );
        // State and run dirs on the host, where the next pod finds them.
        for (flag, prefix) in [
            ("--state-dir", "/var/lib/virtplane/"),
            ("--run-dir", "/run/virtplane/"),
        ] {
            let dir = flag_values(container, flag).pop().unwrap_or_default();
            let host = mount_of(container, &dir)
                .and_then(|m| {
                    items(spec, "/volumes")
                        .iter()
                        .find(|v| str_at(v, "/name") == str_at(m, "/name"))
                })
                .map(|v| str_at(v, "/hostPath/path"));
            if !dir.starts_with(prefix) || host != Some(dir.as_str()) {
                problems.push(format!(
                    "{who}: {flag} {dir:?} must be a hostPath mount of the same path under {prefix}"
                ));
            }
        }
    }

    if let Some(domaind) = container(node, "domaind") {
        let who = format!("{who} container domaind");
        let host_path = |mount_path: &str| {
            mount_of(domaind, mount_path).and_then(|m| {
                items(spec, "/volumes")
                    .iter()
                    .find(|v| str_at(v, "/name") == str_at(m, "/name"))
                    .map(|v| (m, v))
            })
        };
        match host_path("/dev/kvm") {
            Some((_, v))
                if str_at(v, "/hostPath/path") == "/dev/kvm"
                    && str_at(v, "/hostPath/type") == "CharDevice" => {}
            _ => problems.push(format!(
                "{who}: /dev/kvm must be a hostPath volume of type CharDevice mounted at /dev/kvm"
            )),
        }
        match host_path("/sys/fs/cgroup") {
            Some((m, v))
                if str_at(v, "/hostPath/path") == "/sys/fs/cgroup" && !is_true(m, "/readOnly") => {}
            _ => problems.push(format!(
                "{who}: the host's /sys/fs/cgroup must be mounted read-write at /sys/fs/cgroup \
                 (QEMU goes into the host's cgroup tree)"
            )),
        }
        // The gateway lists the node's objects under the name domaind reports: the
        // Kubernetes node's, from the downward API.
        let node_name = flag_values(domaind, "--node-name");
        let from_node_name = |value: &String| {
            value
                .strip_prefix("$(")
                .and_then(|v| v.strip_suffix(')'))
                .is_some_and(|var| {
                    items(domaind, "/env").iter().any(|e| {
                        str_at(e, "/name") == var
                            && str_at(e, "/valueFrom/fieldRef/fieldPath") == "spec.nodeName"
                    })
                })
        };
        if !matches!(node_name.as_slice(), [value] if from_node_name(value)) {
            problems.push(format!(
                "{who}: --node-name {node_name:?} must be $(VAR) with VAR from the downward \
                 API's spec.nodeName"
            ));
        }
        // domaind reaches the others through their unix sockets, in directories both see.
        for (flag, other) in [
            ("--network-service", "networkd"),
            ("--storage-service", "storaged"),
        ] {
            let Some(other_container) = container(node, other) else {
                continue;
            };
            let address = flag_values(domaind, flag).pop().unwrap_or_default();
            let Some(socket) = address.strip_prefix("unix:") else {
                problems.push(format!(
                    "{who}: {flag} {address:?} must be a unix: socket in the pod"
                ));
                continue;
            };
            if !flag_values(other_container, "--listen").contains(&address) {
                problems.push(format!(
                    "{who}: {flag} {address}, but {other} does not --listen there"
                ));
            }
            let shared = volume_at(node, domaind, socket)
                .zip(volume_at(node, other_container, socket))
                .is_some_and(|(a, b)| a == b);
            if !shared {
                problems.push(format!(
                    "{who}: the socket {socket} is not on a volume domaind and {other} share"
                ));
            }
        }
    }
}

fn node_service(objects: &[Value], problems: &mut Vec<String>) {
    let Some(service) = find(objects, "Service", NODE) else {
        problems.push(format!(
            "no Service {NODE} (the headless Service the gateway resolves)"
        ));
        return;
    };
    let who = id(service);
    if str_at(service, "/spec/clusterIP") != "None" {
        problems.push(format!("{who}: must be headless (clusterIP: None)"));
    }
    let selector = service
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or(Value::Null);
    let selects_nodes = find(objects, "DaemonSet", NODE).is_some_and(|ds| {
        selector.as_object().is_some_and(|s| {
            !s.is_empty() && s.iter().all(|(k, v)| pod_labels(ds).get(k) == Some(v))
        })
    });
    if !selects_nodes {
        problems.push(format!(
            "{who}: its selector does not select the {NODE} pods"
        ));
    }
    for (service_name, _, port, _) in NODE_SERVICES {
        let found = items(service, "/spec/ports").iter().any(|p| {
            p.get("port") == Some(&Value::from(port))
                && p.get("targetPort").is_none_or(|t| t == &Value::from(port))
        });
        if !found {
            problems.push(format!("{who}: no port {port} ({service_name})"));
        }
    }
}

fn gateway_deployment(objects: &[Value], expect: &Expect, problems: &mut Vec<String>) {
    let Some(gateway) = find(objects, "Deployment", GATEWAY) else {
        problems.push(format!("no Deployment {GATEWAY}"));
        return;
    };
    let who = id(gateway);
    let replicas = gateway.pointer("/spec/replicas").and_then(Value::as_u64);
    if replicas != Some(expect.gateway_replicas) {
        problems.push(format!(
            "{who}: {replicas:?} replicas, expected {}",
            expect.gateway_replicas
        ));
    }
    let spec = pod_spec(gateway);
    for container in all_containers(gateway) {
        let who = format!("{who} container {}", str_at(container, "/name"));
        let non_root = is_true(container, "/securityContext/runAsNonRoot")
            || (is_true(spec, "/securityContext/runAsNonRoot")
                && container.pointer("/securityContext/runAsNonRoot").is_none());
        if !non_root {
            problems.push(format!("{who}: must run as non-root (runAsNonRoot: true)"));
        }
        if !is_true(container, "/securityContext/readOnlyRootFilesystem") {
            problems.push(format!("{who}: needs readOnlyRootFilesystem: true"));
        }
        if is_true(container, "/securityContext/privileged")
            || container.pointer("/securityContext/allowPrivilegeEscalation")
                != Some(&Value::Bool(false))
        {
            problems.push(format!(
                "{who}: must not be privileged (allowPrivilegeEscalation: false)"
            ));
        }
    }
    let Some(container) = container(gateway, "gateway") else {
        problems.push(format!("{who}: no container named gateway"));
        return;
    };
    let who = format!("{who} container gateway");
    let node_service = find(objects, "Service", NODE);
    let mut node_dns = flag_values(container, "--node-dns");
    node_dns.sort();
    let mut wanted: Vec<String> = NODE_SERVICES
        .iter()
        .map(|(service, _, port, _)| {
            format!("{service}={NODE}.{NAMESPACE}.svc.cluster.local:{port}")
        })
        .collect();
    wanted.sort();
    if node_dns != wanted || node_service.is_none() {
        problems.push(format!(
            "{who}: --node-dns {node_dns:?}, expected {wanted:?} (the headless Service)"
        ));
    }
    let server_name = flag_values(container, "--client-tls-server-name");
    if server_name != [NODE] {
        problems.push(format!(
            "{who}: --client-tls-server-name {server_name:?}, expected {NODE} (the nodes' \
             certificate SAN; the gateway connects to their IPs)"
        ));
    }
    files_from_secret(
        gateway,
        container,
        &["--client-tls-ca", "--client-tls-cert", "--client-tls-key"],
        GATEWAY_TLS_SECRET,
        problems,
    );
    files_from_secret(
        gateway,
        container,
        &["--tls-cert", "--tls-key"],
        GATEWAY_SERVER_TLS_SECRET,
        problems,
    );
    files_from_secret(gateway, container, &["--tokens"], TOKENS_SECRET, problems);
    let listen = flag_values(container, "--listen");
    if listen != [format!("0.0.0.0:{GATEWAY_PORT}")] {
        problems.push(format!(
            "{who}: --listen {listen:?}, expected 0.0.0.0:{GATEWAY_PORT}"
        ));
    }
    let metrics = flag_values(container, "--metrics-listen");
    if metrics != [format!("0.0.0.0:{GATEWAY_METRICS_PORT}")] {
        problems.push(format!(
            "{who}: --metrics-listen {metrics:?}, expected 0.0.0.0:{GATEWAY_METRICS_PORT}"
        ));
    }
    let service_ok = find(objects, "Service", GATEWAY).is_some_and(|service| {
        let selector = service.pointer("/spec/selector").and_then(Value::as_object);
        let selects = selector.is_some_and(|s| {
            !s.is_empty() && s.iter().all(|(k, v)| pod_labels(gateway).get(k) == Some(v))
        });
        selects
            && items(service, "/spec/ports")
                .iter()
                .any(|p| p.get("port") == Some(&Value::from(GATEWAY_PORT)))
    });
    if !service_ok {
        problems.push(format!(
            "no Service {GATEWAY} with port {GATEWAY_PORT} selecting the gateway pods"
        ));
    }
}

fn disruption_budget(objects: &[Value], expect: &Expect, problems: &mut Vec<String>) {
    let Some(gateway) = find(objects, "Deployment", GATEWAY) else {
        return;
    };
    let budgets: Vec<&Value> = of_kind(objects, "PodDisruptionBudget")
        .filter(|pdb| {
            pdb.pointer("/spec/selector")
                .is_some_and(|s| selects(s, pod_labels(gateway)))
        })
        .collect();
    let [pdb] = budgets.as_slice() else {
        problems.push(format!(
            "expected one PodDisruptionBudget selecting the {GATEWAY} pods, found {}",
            budgets.len()
        ));
        return;
    };
    // An integer minAvailable at or above the replicas blocks every drain.
    if let Some(min) = pdb.pointer("/spec/minAvailable").and_then(Value::as_u64)
        && min >= expect.gateway_replicas
    {
        problems.push(format!(
            "{}: minAvailable {min} with {} replica(s) blocks every node drain",
            id(pdb),
            expect.gateway_replicas
        ));
    }
    if pdb.pointer("/spec/maxUnavailable") == Some(&Value::from(0)) {
        problems.push(format!(
            "{}: maxUnavailable 0 blocks every node drain",
            id(pdb)
        ));
    }
}

/// Whether an ingress rule admits TCP `port` of pods whose container ports are `named`
/// (a rule without ports admits every port).
fn covers(rule: &Value, port: u16, named: &[(String, u16)]) -> bool {
    let ports = items(rule, "/ports");
    if rule.get("ports").is_none() || ports.is_empty() {
        return true;
    }
    ports.iter().any(|entry| {
        let protocol = str_at(entry, "/protocol");
        if !(protocol.is_empty() || protocol == "TCP") {
            return false;
        }
        let start = match entry.get("port") {
            None => return true,
            Some(Value::String(name)) => match named.iter().find(|(n, _)| n == name) {
                Some((_, p)) => *p,
                None => return false,
            },
            Some(number) => match number.as_u64().and_then(|n| u16::try_from(n).ok()) {
                Some(p) => p,
                None => return false,
            },
        };
        let end = entry
            .get("endPort")
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(start);
        (start..=end).contains(&port)
    })
}

fn named_ports(workload: &Value) -> Vec<(String, u16)> {
    all_containers(workload)
        .flat_map(|c| items(c, "/ports"))
        .filter_map(|p| {
            let port = p.get("containerPort")?.as_u64()?;
            Some((str_at(p, "/name").to_owned(), u16::try_from(port).ok()?))
        })
        .collect()
}

/// Policies that select a workload's pods for ingress.
fn ingress_policies<'a>(objects: &'a [Value], workload: &Value) -> Vec<&'a Value> {
    of_kind(objects, "NetworkPolicy")
        .filter(|np| {
            np.pointer("/spec/podSelector")
                .is_some_and(|s| selects(s, pod_labels(workload)))
                && (items(np, "/spec/policyTypes").is_empty()
                    || items(np, "/spec/policyTypes").contains(&Value::from("Ingress")))
        })
        .collect()
}

fn node_network_policy(objects: &[Value], problems: &mut Vec<String>) {
    let (Some(node), Some(gateway)) = (
        find(objects, "DaemonSet", NODE),
        find(objects, "Deployment", GATEWAY),
    ) else {
        return;
    };
    let policies = ingress_policies(objects, node);
    if policies.is_empty() {
        problems.push(format!(
            "no NetworkPolicy selects the {NODE} pods for ingress"
        ));
        return;
    }
    let named = named_ports(node);
    // A peer is the gateway exactly: a pod selector (same namespace) that selects the
    // gateway pods and not the node pods, with no namespace selector or IP block.
    let gateway_only = |peer: &Value| {
        peer.as_object().is_some_and(|p| p.len() == 1)
            && peer
                .get("podSelector")
                .is_some_and(|s| selects(s, pod_labels(gateway)) && !selects(s, pod_labels(node)))
    };
    for (service, _, port, _) in NODE_SERVICES {
        let mut reaches = false;
        for np in &policies {
            for rule in items(np, "/spec/ingress") {
                if !covers(rule, port, &named) {
                    continue;
                }
                let from = items(rule, "/from");
                if rule.get("from").is_none() || from.is_empty() || !from.iter().all(gateway_only) {
                    problems.push(format!(
                        "{}: a rule admits port {port} ({service}) from {}, not only from the \
                         gateway pods",
                        id(np),
                        if from.is_empty() {
                            "everywhere".to_owned()
                        } else {
                            serde_json::to_string(from).unwrap_or_default()
                        }
                    ));
                } else {
                    reaches = true;
                }
            }
        }
        if !reaches {
            problems.push(format!(
                "no NetworkPolicy rule admits the gateway to the {NODE} pods' port {port} ({service})"
            ));
        }
    }
}

fn gateway_network_policy(objects: &[Value], problems: &mut Vec<String>) {
    let Some(gateway) = find(objects, "Deployment", GATEWAY) else {
        return;
    };
    let policies = ingress_policies(objects, gateway);
    if policies.is_empty() {
        problems.push(format!(
            "no NetworkPolicy selects the {GATEWAY} pods for ingress"
        ));
        return;
    }
    let named = named_ports(gateway);
    for (what, port) in [("gRPC", GATEWAY_PORT), ("metrics", GATEWAY_METRICS_PORT)] {
        let admitted = policies
            .iter()
            .flat_map(|np| items(np, "/spec/ingress"))
            .any(|rule| covers(rule, port, &named));
        if !admitted {
            problems.push(format!(
                "no NetworkPolicy rule admits the {GATEWAY} pods' {what} port {port}"
            ));
        }
    }
}
