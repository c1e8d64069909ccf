//! Host-side primitives of the bridge driver.
