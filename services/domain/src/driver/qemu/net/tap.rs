//! Making a persistent tap through `/dev/net/tun`: `TUNSETIFF` then `TUNSETPERSIST`. Netlink
//! cannot create taps ("tun/tap creation via rtnetlink is not supported"), so this is the one
//! place of the driver that issues raw ioctls: two calls, each on a file this function owns
//! and a struct it initialised.
//!
//! QEMU later opens the tap by name (`-netdev tap,ifname=…`) with its own `TUNSETIFF`: the
//! kernel lets any opener with CAP_NET_ADMIN attach to an existing single-queue tap that is
//! not in use, and takes the opener's `IFF_NO_PI`/`IFF_VNET_HDR`, so the flags here only
//! describe the tap until QEMU has it. `IFF_MULTI_QUEUE` must match, and neither side sets it.
#![allow(unsafe_code)]

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;

use super::error::NetError;

/// The tun/tap control device.
pub const TUN_DEVICE: &str = "/dev/net/tun";

/// Creates the persistent tap `name`; fails with [`NetError::TapExists`] if any device of
/// that name exists (`IFF_TUN_EXCL`: checked by the kernel, so no race with other creators).
/// Non-blocking kernel calls only.
pub fn create_persistent(name: &str, vnet_hdr: bool) -> Result<(), NetError> {
    let tun = OpenOptions::new()
        .read(true)
        .write(true)
        .open(TUN_DEVICE)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                NetError::io(format!("open {TUN_DEVICE} (is the tun module loaded?)"), e)
            }
            _ => NetError::io(format!("open {TUN_DEVICE}"), e),
        })?;
    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_TUN_EXCL;
    if vnet_hdr {
        flags |= libc::IFF_VNET_HDR;
    }
    let mut request = ifreq(name, flags)?;
    // SAFETY: `tun` is an open /dev/net/tun for the whole call; TUNSETIFF reads a `struct
    // ifreq` and writes the chosen name back into it, and `request` is a fully initialised
    // `libc::ifreq` that outlives the call.
    let rc = unsafe {
        libc::ioctl(
            tun.as_raw_fd(),
            libc::TUNSETIFF as _,
            &mut request as *mut libc::ifreq,
        )
    };
    if rc < 0 {
        let error = std::io::Error::last_os_error();
        return Err(match error.raw_os_error() {
            Some(libc::EBUSY) => NetError::TapExists(name.to_owned()),
            _ => NetError::io(format!("create tap '{name}'"), error),
        });
    }
    // SAFETY: TUNSETPERSIST takes its argument by value (an int), no pointer; `tun` is open
    // and now attached to the tap.
    let rc = unsafe {
        libc::ioctl(
            tun.as_raw_fd(),
            libc::TUNSETPERSIST as _,
            1 as libc::c_ulong,
        )
    };
    if rc < 0 {
        // Closing `tun` removes the tap again: it is not persistent yet.
        return Err(NetError::io(
            format!("make tap '{name}' persistent"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// A `struct ifreq` naming `name` with `flags` (checked: at most 15 bytes, no NUL).
fn ifreq(name: &str, flags: libc::c_int) -> Result<libc::ifreq, NetError> {
    if let Some(why) = super::names::invalid_name(name) {
        return Err(NetError::Invalid {
            what: format!("tap name '{name}'"),
            why: why.into(),
        });
    }
    // Bit pattern, not value: IFF_TUN_EXCL is 0x8000, the sign bit of the C `short`.
    let flags = u16::try_from(flags).map_err(|_| NetError::Invalid {
        what: format!("tap '{name}'"),
        why: format!("flags {flags:#x} do not fit ifr_flags"),
    })? as libc::c_short;
    // SAFETY: `ifreq` is plain old data (names, integers, addresses); all zeroes is a valid
    // value, and zeroing also clears the union bytes the flags do not cover.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = flags;
    Ok(request)
}
