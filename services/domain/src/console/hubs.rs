//! Every open console hub, one per domain and device.

use std::collections::HashMap;
use std::sync::Arc;

use super::endpoint::ConsoleEndpoint;
use super::error::ConsoleError;
use super::hub::{AttachMode, Attachment, CloseReason, Closed, Hub, HubConfig};

/// The registry of hubs. A hub stays open while its domain runs, attached clients or not, so
/// the scrollback keeps up with the guest; it goes when its socket closes, when its domain
/// is found to be in a new run, or at shutdown.
#[derive(Debug)]
pub struct ConsoleHubs {
    config: HubConfig,
    /// Held across a hub's start (bounded by the connect timeout), so that clients attaching
    /// at once to a console share one connection.
    hubs: tokio::sync::Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    by_console: HashMap<(String, String), Arc<Hub>>,
    shutting_down: bool,
}

impl ConsoleHubs {
    pub fn new(config: HubConfig) -> Self {
        Self {
            config,
            hubs: tokio::sync::Mutex::new(Registry::default()),
        }
    }

    /// Attaches a client to the console `endpoint` names, opening its hub if needed.
    pub async fn attach(
        &self,
        endpoint: ConsoleEndpoint,
        mode: AttachMode,
    ) -> Result<Attachment, ConsoleError> {
        let mut registry = self.hubs.lock().await;
        if registry.shutting_down {
            return Err(ConsoleError::Closed(shutdown_notice()));
        }
        // Closed hubs hold no output; dropping them here keeps the map to live consoles.
        registry.by_console.retain(|_, hub| !hub.is_closed());
        let key = (endpoint.domain.clone(), endpoint.device.clone());
        if let Some(hub) = registry.by_console.get(&key) {
            let current = hub.endpoint();
            if current.run_token != endpoint.run_token || current.socket != endpoint.socket {
                // The domain was restarted before this hub saw its old QEMU go.
                hub.close(Closed::new(
                    CloseReason::DomainStopped,
                    format!(
                        "console of '{}' closed: the domain was restarted",
                        endpoint.domain
                    ),
                ));
                registry.by_console.remove(&key);
            }
        }
        let hub = match registry.by_console.get(&key) {
            Some(hub) => hub.clone(),
            None => {
                let hub = Hub::start(endpoint, self.config.clone()).await?;
                registry.by_console.insert(key, hub.clone());
                hub
            }
        };
        drop(registry);
        hub.attach(mode)
    }

    /// Ends every console (clients get SERVICE_SHUTDOWN) and refuses new ones: a console
    /// stream never ends by itself, so without this a graceful shutdown would wait forever.
    pub async fn shutdown(&self) {
        let mut registry = self.hubs.lock().await;
        registry.shutting_down = true;
        for hub in registry.by_console.values() {
            hub.close(shutdown_notice());
        }
        registry.by_console.clear();
    }

    /// How many consoles are open (for tests and diagnostics).
    pub async fn open_count(&self) -> usize {
        let registry = self.hubs.lock().await;
        registry
            .by_console
            .values()
            .filter(|h| !h.is_closed())
            .count()
    }
}

fn shutdown_notice() -> Closed {
    Closed::new(
        CloseReason::ServiceShutdown,
        "console closed: the domain service is shutting down; attach again once it is back",
    )
}
