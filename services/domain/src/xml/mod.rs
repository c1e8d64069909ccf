//! libvirt-format domain XML.
