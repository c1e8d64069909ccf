//! Host facts: version and nodeinfo.

use virtplane_proto::v1 as pb;

use super::Ctx;
use crate::error::Error;
use crate::output::key_values;
use crate::view::{NodeInfo, Version};

pub async fn version(ctx: &mut Ctx) -> Result<(), Error> {
    let mut client = ctx.conn.host();
    let resp = ctx
        .conn
        .unary(client.get_version(ctx.conn.request(pb::GetVersionRequest {})))
        .await?;
    let v = Version::from_proto(&resp);
    if !ctx.out.is_table() {
        return ctx.out.data(&v);
    }
    ctx.out.raw(&render_version(&v))
}

/// virsh's version lines; virtplane plays libvirt's part, the driver libvirt's API driver.
pub fn render_version(v: &Version) -> String {
    let line = |label: &str, name: &str, version: &str| {
        let text = [name, version]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        format!("{label}: {text}\n")
    };
    let mut out = line("Compiled against library", "virtplane", v.client_version);
    out += &line("Using library", "virtplane", &v.service_version);
    out += &line("Using API", driver_name(&v.driver), &v.driver_version);
    if !v.hypervisor.is_empty() {
        out += &line("Running hypervisor", &v.hypervisor, &v.hypervisor_version);
    }
    out
}

/// virsh shows the driver's type as libvirt names it ("QEMU", "Test").
fn driver_name(driver: &str) -> &str {
    match driver {
        "qemu" => "QEMU",
        "test" => "Test",
        other => other,
    }
}

pub async fn nodeinfo(ctx: &mut Ctx) -> Result<(), Error> {
    let mut client = ctx.conn.host();
    let resp = ctx
        .conn
        .unary(client.get_node_info(ctx.conn.request(pb::GetNodeInfoRequest {})))
        .await?;
    let n = NodeInfo::from_proto(&resp);
    if !ctx.out.is_table() {
        return ctx.out.data(&n);
    }
    ctx.out.raw(&render_nodeinfo(&n))
}

/// virsh's nodeinfo lines (`%-20s %s`).
pub fn render_nodeinfo(n: &NodeInfo) -> String {
    key_values(
        20,
        &[
            ("CPU model:", n.cpu_model.clone()),
            ("CPU(s):", n.cpus.to_string()),
            ("CPU frequency:", format!("{} MHz", n.mhz)),
            ("CPU socket(s):", n.sockets.to_string()),
            ("Core(s) per socket:", n.cores.to_string()),
            ("Thread(s) per core:", n.threads.to_string()),
            ("NUMA cell(s):", n.nodes.to_string()),
            ("Memory size:", format!("{} KiB", n.memory_kib)),
        ],
    )
}

/// `health`: the standard gRPC health check, for scripts and probes (deploy/local/up.sh waits
/// on it). Prints the status; a server that answers but is not SERVING is an error.
pub async fn health(ctx: &mut Ctx, args: crate::cli::HealthArgs) -> Result<(), Error> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    let mut client = ctx.conn.health();
    let service = args.service;
    let resp = ctx
        .conn
        .unary(client.check(ctx.conn.request(HealthCheckRequest {
            service: service.clone(),
        })))
        .await?;
    let status = ServingStatus::try_from(resp.status).unwrap_or(ServingStatus::Unknown);
    let word = status.as_str_name();
    let target = if service.is_empty() {
        "server"
    } else {
        service.as_str()
    };
    if status != ServingStatus::Serving {
        return Err(Error::Other(format!("{target} is {word}")));
    }
    ctx.out.raw(&format!("{word}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lines() {
        let v = Version::from_proto(&pb::GetVersionResponse {
            service_version: "0.1.0".into(),
            driver: "test".into(),
            driver_version: "1.0.0".into(),
            hypervisor: "Test".into(),
            hypervisor_version: "1.0.0".into(),
        });
        let text = render_version(&v);
        assert_eq!(
            text,
            format!(
                "Compiled against library: virtplane {}\n\
                 Using library: virtplane 0.1.0\n\
                 Using API: Test 1.0.0\n\
                 Running hypervisor: Test 1.0.0\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn nodeinfo_lines() {
        let n = NodeInfo::from_proto(&pb::GetNodeInfoResponse {
            cpu_model: "x86_64".into(),
            memory_kib: 16_777_216,
            cpus: 4,
            mhz: 2400,
            nodes: 1,
            sockets: 1,
            cores: 2,
            threads: 2,
            hostname: "h".into(),
            ..Default::default()
        });
        assert_eq!(
            render_nodeinfo(&n),
            "CPU model:           x86_64\n\
             CPU(s):              4\n\
             CPU frequency:       2400 MHz\n\
             CPU socket(s):       1\n\
             Core(s) per socket:  2\n\
             Thread(s) per core:  2\n\
             NUMA cell(s):        1\n\
             Memory size:         16777216 KiB\n"
        );
    }
}
