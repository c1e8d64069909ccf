//! The method table: for every RPC, the permissions it needs and the field naming its object,
//! read at run time from the compiled descriptor set's custom options.
//!
//! prost-types' `MethodOptions` drops extensions, so the options are read through
//! prost-reflect from the encoded descriptor set that build.rs kept.

use std::collections::HashMap;

use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, Value,
};

use crate::FILE_DESCRIPTOR_SET;

/// Why the method table could not be built or a request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error("invalid descriptor set: {0}")]
    Descriptor(#[from] prost_reflect::DescriptorError),
    #[error("descriptor set lacks the extension {0}")]
    MissingExtension(&'static str),
    #[error("request body is not a valid {message}: {source}")]
    Decode {
        message: String,
        #[source]
        source: prost::DecodeError,
    },
}

/// The kind of object a method's key field names (mirrors `virtplane.v1.ObjectKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Domain,
    Network,
    StoragePool,
    StorageVol,
}

impl ObjectKind {
    fn from_enum_number(number: i32) -> Option<Self> {
        match number {
            1 => Some(Self::Domain),
            2 => Some(Self::Network),
            3 => Some(Self::StoragePool),
            4 => Some(Self::StorageVol),
            _ => None,
        }
    }

    /// libvirt's object word, as used in permissions and audit lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Domain => "domain",
            Self::Network => "network",
            Self::StoragePool => "storage_pool",
            Self::StorageVol => "storage_vol",
        }
    }
}

/// The object a request names, e.g. domain `web` or domain `uuid:…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    pub kind: ObjectKind,
    /// The name, or `uuid:<uuid>` when the request names the object by UUID.
    pub value: String,
}

/// Everything the gateway needs to know about one RPC.
#[derive(Debug, Clone)]
pub struct MethodAcl {
    /// The HTTP/2 path, `/virtplane.v1.DomainService/Start`.
    pub path: String,
    /// Fully qualified service name, `virtplane.v1.DomainService`.
    pub service: String,
    /// Method name, `Start`.
    pub method: String,
    /// The daemon serving it (`domain`, `network`, `storage`), from the service's `backend`
    /// option; empty when the service declares none.
    pub backend: String,
    /// Permissions that must all be granted.
    pub perms: Vec<String>,
    /// Flag-conditional permissions, enforced by the service (documentation for clients).
    pub flag_perms: Vec<String>,
    pub client_streaming: bool,
    pub server_streaming: bool,
    /// The top-level request field marked `object_key`, if any.
    object_key: Option<(FieldDescriptor, ObjectKind)>,
    input: MessageDescriptor,
}

impl MethodAcl {
    /// True when no permission was declared: such a method is denied to everyone.
    pub fn is_unannotated(&self) -> bool {
        self.perms.is_empty()
    }

    /// True when the call changes something (anything beyond getattr/read/search_*), so it is
    /// written to the audit log.
    pub fn is_mutating(&self) -> bool {
        self.perms.iter().any(|p| !is_read_only_permission(p))
    }

    /// True when the request has a field naming the object the call acts on.
    pub fn is_keyed(&self) -> bool {
        self.object_key.is_some()
    }

    /// The request message type.
    pub fn input(&self) -> &MessageDescriptor {
        &self.input
    }

    /// Reads the object key from an encoded request (for a stream, its first message).
    /// Returns `Ok(None)` when the method has no key field or the request leaves it empty.
    pub fn object_key(&self, request: &[u8]) -> Result<Option<ObjectKey>, AclError> {
        let Some((field, kind)) = &self.object_key else {
            return Ok(None);
        };
        let message = DynamicMessage::decode(self.input.clone(), request).map_err(|source| {
            AclError::Decode {
                message: self.input.full_name().to_owned(),
                source,
            }
        })?;
        if !message.has_field(field) {
            return Ok(None);
        }
        let value = match message.get_field(field).as_ref() {
            Value::String(name) => name.clone(),
            Value::Message(reference) => match reference_value(reference) {
                Some(value) => value,
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        if value.is_empty() {
            return Ok(None);
        }
        Ok(Some(ObjectKey { kind: *kind, value }))
    }
}

/// Reads a `*Ref` message (`oneof id { string name; string uuid; }`): the first set field,
/// a uuid prefixed with `uuid:`. A volume named by pool and name (`PoolVolumeName`) reads
/// `pool/volume`; by key or path, the key or path.
fn reference_value(reference: &DynamicMessage) -> Option<String> {
    for (field, value) in reference.fields() {
        match value {
            Value::String(text) if !text.is_empty() => {
                return Some(if field.name() == "uuid" {
                    format!("uuid:{text}")
                } else {
                    text.clone()
                });
            }
            Value::Message(name) => {
                let part = |field: &str| {
                    name.get_field_by_name(field)
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .filter(|text| !text.is_empty())
                };
                if let (Some(pool), Some(volume)) = (part("pool"), part("volume")) {
                    return Some(format!("{pool}/{volume}"));
                }
            }
            _ => {}
        }
    }
    None
}

/// True for libvirt's read-only permissions: every `getattr`, `read` and `search_*`.
/// This is exactly the viewer role's set.
pub fn is_read_only_permission(permission: &str) -> bool {
    let Some((_, verb)) = permission.split_once(':') else {
        return false;
    };
    verb == "getattr" || verb == "read" || verb.starts_with("search_")
}

/// Every RPC of the descriptor set, keyed by HTTP/2 path.
#[derive(Debug, Clone)]
pub struct MethodTable {
    methods: HashMap<String, MethodAcl>,
    pool: DescriptorPool,
}

impl MethodTable {
    /// Builds the table from virtplane's own descriptor set.
    pub fn load() -> Result<Self, AclError> {
        Self::from_descriptor_set(FILE_DESCRIPTOR_SET)
    }

    /// Builds the table from an encoded descriptor set (tests use their own).
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<Self, AclError> {
        let pool = DescriptorPool::decode(bytes)?;
        let acl_extension = pool
            .get_extension_by_name("virtplane.v1.acl")
            .ok_or(AclError::MissingExtension("virtplane.v1.acl"))?;
        let key_extension = pool
            .get_extension_by_name("virtplane.v1.object_key")
            .ok_or(AclError::MissingExtension("virtplane.v1.object_key"))?;
        let backend_extension = pool
            .get_extension_by_name("virtplane.v1.backend")
            .ok_or(AclError::MissingExtension("virtplane.v1.backend"))?;
        let mut methods = HashMap::new();
        for service in pool.services() {
            let options = service.options();
            let backend = if options.has_extension(&backend_extension) {
                options
                    .get_extension(&backend_extension)
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            } else {
                String::new()
            };
            for method in service.methods() {
                let mut entry = method_acl(&method, &acl_extension, &key_extension);
                entry.backend = backend.clone();
                methods.insert(entry.path.clone(), entry);
            }
        }
        Ok(Self { methods, pool })
    }

    /// The entry for an HTTP/2 path such as `/virtplane.v1.DomainService/Start`.
    pub fn get(&self, path: &str) -> Option<&MethodAcl> {
        self.methods.get(path)
    }

    /// Every method, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &MethodAcl> {
        self.methods.values()
    }

    /// The descriptor pool, for callers that decode messages themselves.
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }
}

fn method_acl(
    method: &MethodDescriptor,
    acl_extension: &ExtensionDescriptor,
    key_extension: &ExtensionDescriptor,
) -> MethodAcl {
    let options = method.options();
    let (perms, flag_perms) = if options.has_extension(acl_extension) {
        let acl = options.get_extension(acl_extension);
        let acl = acl.as_message();
        (
            acl.map(|m| strings(m, "perm")).unwrap_or_default(),
            acl.map(|m| strings(m, "flag_perm")).unwrap_or_default(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let input = method.input();
    let object_key = input.fields().find_map(|field| {
        let options = field.options();
        if !options.has_extension(key_extension) {
            return None;
        }
        let kind = options.get_extension(key_extension).as_enum_number()?;
        let kind = ObjectKind::from_enum_number(kind)?;
        matches!(field.kind(), Kind::String | Kind::Message(_)).then_some((field, kind))
    });
    let service = method.parent_service();
    MethodAcl {
        path: format!("/{}/{}", service.full_name(), method.name()),
        service: service.full_name().to_owned(),
        method: method.name().to_owned(),
        backend: String::new(),
        perms,
        flag_perms,
        client_streaming: method.is_client_streaming(),
        server_streaming: method.is_server_streaming(),
        object_key,
        input,
    }
}

fn strings(message: &DynamicMessage, field: &str) -> Vec<String> {
    let Some(value) = message.get_field_by_name(field) else {
        return Vec::new();
    };
    value
        .as_list()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::v1;

    #[test]
    fn every_method_declares_a_permission() {
        let table = MethodTable::load().unwrap();
        assert!(
            table.iter().count() > 10,
            "descriptor set has the domain service"
        );
        let missing: Vec<_> = table
            .iter()
            .filter(|m| m.is_unannotated())
            .map(|m| m.path.clone())
            .collect();
        assert!(
            missing.is_empty(),
            "methods without an acl option: {missing:?}"
        );
    }

    #[test]
    fn every_virtplane_service_names_its_backend() {
        let table = MethodTable::load().unwrap();
        for method in table.iter() {
            assert!(
                ["domain", "network", "storage"].contains(&method.backend.as_str()),
                "{} has backend {:?}",
                method.path,
                method.backend
            );
        }
    }

    #[test]
    fn every_permission_uses_libvirt_vocabulary() {
        const OBJECTS: &[&str] = &[
            "connect",
            "domain",
            "network",
            "network_port",
            "storage_pool",
            "storage_vol",
            "interface",
            "node_device",
            "nwfilter",
            "nwfilter_binding",
            "secret",
        ];
        let table = MethodTable::load().unwrap();
        for method in table.iter() {
            for perm in &method.perms {
                let (object, verb) = perm.split_once(':').unwrap_or(("", ""));
                assert!(
                    OBJECTS.contains(&object) && !verb.is_empty(),
                    "{}: bad permission {perm:?}",
                    method.path
                );
            }
        }
    }

    #[test]
    fn start_needs_domain_start_and_names_its_domain() {
        let table = MethodTable::load().unwrap();
        let start = table.get("/virtplane.v1.DomainService/Start").unwrap();
        assert_eq!(start.perms, vec!["domain:start"]);
        assert_eq!(start.backend, "domain");
        assert!(start.is_mutating());
        let request = v1::StartDomainRequest {
            domain: Some(v1::DomainRef {
                id: Some(v1::domain_ref::Id::Name("web".into())),
            }),
            paused: false,
        };
        let key = start.object_key(&request.encode_to_vec()).unwrap().unwrap();
        assert_eq!(key.kind, ObjectKind::Domain);
        assert_eq!(key.value, "web");
    }

    #[test]
    fn volume_keys_read_pool_slash_volume_or_the_path() {
        let table = MethodTable::load().unwrap();
        let delete = table
            .get("/virtplane.v1.StorageService/DeleteVolume")
            .unwrap();
        assert_eq!(delete.perms, vec!["storage_vol:delete"]);
        assert_eq!(delete.backend, "storage");
        let by_name = v1::DeleteVolumeRequest {
            volume: Some(v1::StorageVolRef {
                id: Some(v1::storage_vol_ref::Id::Name(v1::PoolVolumeName {
                    pool: "default".into(),
                    volume: "web.qcow2".into(),
                })),
            }),
        };
        let key = delete
            .object_key(&by_name.encode_to_vec())
            .unwrap()
            .unwrap();
        assert_eq!(key.kind, ObjectKind::StorageVol);
        assert_eq!(key.value, "default/web.qcow2");
        let by_path = v1::DeleteVolumeRequest {
            volume: Some(v1::StorageVolRef {
                id: Some(v1::storage_vol_ref::Id::Path(
                    "/var/lib/virtplane/images/web.qcow2".into(),
                )),
            }),
        };
        let key = delete
            .object_key(&by_path.encode_to_vec())
            .unwrap()
            .unwrap();
        assert_eq!(key.value, "/var/lib/virtplane/images/web.qcow2");
    }

    #[test]
    fn uuid_keys_are_prefixed_and_empty_keys_are_none() {
        let table = MethodTable::load().unwrap();
        let info = table.get("/virtplane.v1.DomainService/GetInfo").unwrap();
        assert!(!info.is_mutating());
        let by_uuid = v1::GetDomainInfoRequest {
            domain: Some(v1::DomainRef {
                id: Some(v1::domain_ref::Id::Uuid(
                    "c7a5fdbd-edaf-9455-926a-d65c16db1809".into(),
                )),
            }),
        };
        let key = info.object_key(&by_uuid.encode_to_vec()).unwrap().unwrap();
        assert_eq!(key.value, "uuid:c7a5fdbd-edaf-9455-926a-d65c16db1809");
        assert_eq!(info.object_key(&[]).unwrap(), None);
    }

    #[test]
    fn flag_permissions_are_read() {
        let table = MethodTable::load().unwrap();
        let xml = table.get("/virtplane.v1.DomainService/GetXml").unwrap();
        assert_eq!(xml.flag_perms, vec!["domain:read_secure if secure"]);
    }

    #[test]
    fn network_methods_route_to_the_network_service_with_libvirt_permissions() {
        let table = MethodTable::load().unwrap();
        let expected: &[(&str, &[&str], bool)] = &[
            ("Define", &["network:write", "network:save"], false),
            ("Create", &["network:write", "network:start"], false),
            ("Undefine", &["network:delete"], true),
            ("Start", &["network:start"], true),
            ("Destroy", &["network:stop"], true),
            ("Lookup", &["network:getattr"], true),
            ("List", &["connect:search_networks"], false),
            ("GetInfo", &["network:read"], true),
            ("GetXml", &["network:read"], true),
            ("SetAutostart", &["network:write"], true),
            ("Update", &["network:write"], true),
            ("GetDhcpLeases", &["network:read"], true),
            ("CreatePort", &["network_port:create"], true),
            ("DeletePort", &["network_port:delete"], true),
            ("ListPorts", &["network:search_ports"], true),
            ("GetPortXml", &["network_port:read"], true),
            ("WatchEvents", &["connect:search_networks"], false),
        ];
        let served: Vec<&MethodAcl> = table
            .iter()
            .filter(|m| m.service == "virtplane.v1.NetworkService")
            .collect();
        assert_eq!(served.len(), expected.len(), "every rpc is checked here");
        for (name, perms, keyed) in expected {
            let path = format!("/virtplane.v1.NetworkService/{name}");
            let method = table.get(&path).unwrap_or_else(|| panic!("{path} missing"));
            assert_eq!(method.backend, "network", "{path}");
            assert_eq!(&method.perms, perms, "{path}");
            assert_eq!(method.object_key.is_some(), *keyed, "{path}: object key");
        }
        let update = table.get("/virtplane.v1.NetworkService/Update").unwrap();
        assert_eq!(
            update.flag_perms,
            vec![
                "network:save if flags.config",
                "network:save if !flags.live && !flags.config"
            ]
        );
        assert!(
            table
                .get("/virtplane.v1.NetworkService/WatchEvents")
                .unwrap()
                .server_streaming
        );
        let start = table.get("/virtplane.v1.NetworkService/Start").unwrap();
        assert!(start.is_mutating());
        let request = v1::StartNetworkRequest {
            network: Some(v1::NetworkRef {
                id: Some(v1::network_ref::Id::Name("default".into())),
            }),
        };
        let key = start.object_key(&request.encode_to_vec()).unwrap().unwrap();
        assert_eq!(key.kind, ObjectKind::Network);
        assert_eq!(key.value, "default");
        let leases = table
            .get("/virtplane.v1.NetworkService/GetDhcpLeases")
            .unwrap();
        assert!(!leases.is_mutating(), "viewers may read leases");
    }

    #[test]
    fn read_only_permissions() {
        assert!(is_read_only_permission("domain:read"));
        assert!(is_read_only_permission("domain:getattr"));
        assert!(is_read_only_permission("connect:search_domains"));
        assert!(is_read_only_permission("storage_pool:search_storage_vols"));
        assert!(!is_read_only_permission("domain:read_secure"));
        assert!(!is_read_only_permission("domain:start"));
        assert!(!is_read_only_permission("nonsense"));
    }
}
