//! `net-update` (libvirt's networkUpdate + virNetworkObjUpdate): which definitions an update
//! touches, the refusals, and the live half applied by the runtime before anything is
//! committed. The edit itself is `crate::xml::apply_update`.

use std::sync::Arc;

use super::{Core, Outcome};
use crate::error::{NetworkError, Result};
use crate::model::{Impact, NetworkRef, UpdateSpec, Updated};
use crate::xml::apply_update;

/// Resolves "current" (neither flag) as libvirt does: live if active, else config.
pub fn resolve(impact: Impact, active: bool) -> Updated {
    if !impact.live && !impact.config {
        return Updated {
            live: active,
            config: !active,
        };
    }
    Updated {
        live: impact.live,
        config: impact.config,
    }
}

impl Core {
    pub(super) async fn update_network(
        &self,
        network: &NetworkRef,
        spec: UpdateSpec,
    ) -> Result<Updated> {
        let locked = self.begin(network).await?;
        let old = &locked.old;
        let targets = resolve(spec.impact, old.active);
        if targets.live && !old.active {
            return Err(NetworkError::OperationInvalid(format!(
                "network '{}' is not running",
                old.name()
            )));
        }
        if targets.config && !old.persistent {
            return Err(NetworkError::OperationInvalid(format!(
                "cannot change persistent config of a transient network ('{}')",
                old.name()
            )));
        }
        let edit = |def: &crate::xml::NetworkDef| {
            apply_update(
                def,
                spec.command,
                spec.section,
                spec.parent_index,
                &spec.xml,
            )
            .map(Arc::new)
            .map_err(NetworkError::from)
        };
        // Both halves are computed before either is applied, so a refused config half
        // leaves the live network untouched.
        let live = targets.live.then(|| edit(&old.def)).transpose()?;
        let config = match (targets.config, old.persistent_def()) {
            (true, Some(def)) => Some(edit(def)?),
            _ => None,
        };
        let mut next = (**old).clone();
        if let Some(new_live) = live {
            self.runtime.update_live(&old.def, &new_live).await?;
            next.def = new_live;
        }
        if let Some(new_config) = config {
            if old.active {
                next.next_def = Some(new_config);
            } else {
                next.def = new_config;
            }
        }
        self.commit(&locked.object, old, Outcome::Update(next, Vec::new()))
            .await?;
        Ok(targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_means_live_when_active_else_config() {
        let current = Impact::default();
        assert_eq!(
            resolve(current, true),
            Updated {
                live: true,
                config: false
            }
        );
        assert_eq!(
            resolve(current, false),
            Updated {
                live: false,
                config: true
            }
        );
        let both = Impact {
            live: true,
            config: true,
        };
        assert_eq!(
            resolve(both, false),
            Updated {
                live: true,
                config: true
            }
        );
    }
}
