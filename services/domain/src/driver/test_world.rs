//! The default world of the test driver, as libvirt's test:///default has it: one running,
//! persistent domain named `test`.

pub const DEFAULT_DOMAIN_XML: &str = "<domain type='test'>
  <name>test</name>
  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='i686'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <source file='/guest/diskimage1'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='aa:bb:cc:dd:ee:ff'/>
      <source network='default'/>
    </interface>
    <memballoon model='virtio'/>
  </devices>
</domain>
";

/// Node facts of libvirt's test driver (defaultNodeInfo).
pub const NODE_CPUS: u32 = 16;
pub const NODE_MHZ: u32 = 1400;
pub const NODE_MEMORY_KIB: u64 = 3 * 1024 * 1024;
/// testNodeGetFreeMemory: the sum of its two cells' free memory, (i + 1) MiB each, in bytes.
pub const NODE_FREE_MEMORY_KIB: u64 = (1 + 2) * 1024 * 1024 / 1024;
pub const NODE_CPU_MODEL: &str = "i686";
/// testConnectGetMaxVcpus.
pub const MAX_VCPUS: u32 = 32;
