//! HTTP/2 settings every virtplane peer uses (servers, the gateway's backend connections,
//! service-to-service channels, virtctl). The defaults (16 KiB frames, 64 KiB windows) make
//! bulk streams — volume uploads and downloads, a gigabyte in 1 MiB chunks — cost tens of
//! thousands of frames, window updates and syscalls per gigabyte in every hop; measured in
//! bench/ (storage transfers), that CPU was a large part of a transfer on two cores.

/// Largest DATA frame a peer may send us (the protocol allows up to 16 MiB - 1).
pub const MAX_FRAME_SIZE: u32 = 1 << 20;
/// Bytes a peer may send on one stream before we acknowledge them.
pub const STREAM_WINDOW: u32 = 8 << 20;
/// Bytes a peer may send on one connection before we acknowledge them.
pub const CONNECTION_WINDOW: u32 = 16 << 20;
