//! Compiles `virtplane/v1/*.proto` with protox (pure Rust, no system protoc) and generates
//! tonic clients and servers. The encoded descriptor set is kept in OUT_DIR because it carries
//! the custom `acl` / `object_key` options that prost-types' generated structs would drop.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "virtplane/v1/common.proto",
    "virtplane/v1/host.proto",
    "virtplane/v1/domain.proto",
    "virtplane/v1/console.proto",
    "virtplane/v1/domain_stats.proto",
    "virtplane/v1/qemu.proto",
    "virtplane/v1/guest.proto",
    "virtplane/v1/network.proto",
    "virtplane/v1/storage.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let mut compiler = protox::Compiler::new(["."])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTOS)?;
    // Encoded by protox itself: prost-types' structs would drop the custom options.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("virtplane_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let descriptors = compiler.file_descriptor_set();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Volume data as `bytes::Bytes`: decoded without a copy out of the HTTP/2 buffer
        // (a gigabyte upload or download is a gigabyte of memcpy less at its receiver).
        .bytes(".virtplane.v1.VolumeChunk.data")
        .compile_fds(descriptors)?;
    Ok(())
}
