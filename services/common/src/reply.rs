//! Reply helpers every service's handlers share.

/// A reply that names the object it is about in the `x-virtplane-object` header: a define or
/// create carries the name inside its XML, and the gateway's audit line takes it from here.
pub fn naming<T>(name: &str, message: T) -> tonic::Response<T> {
    let mut response = tonic::Response::new(message);
    if let Ok(value) = name.parse() {
        response
            .metadata_mut()
            .insert(virtplane_proto::headers::OBJECT, value);
    }
    response
}
