//! The server's mDNS advertisement (`--zeroconf`): Home Assistant browses
//! `_wyoming._tcp.local.` and offers what it finds there as a Wyoming integration to add.
//!
//! What is advertised is the socket the server actually bound: its port (the one the system
//! chose, for port 0) and its address, or every address of the machine's network
//! interfaces when it listens on all of them. A server on a loopback address or a Unix
//! socket is out of other machines' reach, so advertising it is refused with the reason.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};

/// The service type Home Assistant's Wyoming integration browses for.
pub const SERVICE_TYPE: &str = "_wyoming._tcp.local.";

/// The TXT record stays empty, as Wyoming's own servers leave it: the `info` event says
/// what the server offers.
const NO_PROPERTIES: Option<std::collections::HashMap<String, String>> = None;

/// How long the goodbye (the records sent again with a zero lifetime) may take at shutdown.
const GOODBYE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ZeroconfError {
    #[error("{}", crate::config::ZEROCONF_UNIX)]
    UnixSocket,
    #[error(
        "zeroconf: {0} is reachable from this machine only, so there is nothing to advertise: \
         listen on 0.0.0.0 (every interface) or on this machine's network address"
    )]
    Loopback(IpAddr),
    #[error("zeroconf: {0}")]
    Mdns(#[from] mdns_sd::Error),
}

/// A registered advertisement; dropping it says goodbye on the network (so browsers
/// forget the server at once rather than when the records expire) and stops the mDNS
/// thread.
pub struct Advertisement {
    daemon: ServiceDaemon,
    fullname: String,
}

impl Advertisement {
    /// Advertises `name` for a server bound to `bound`.
    pub fn start(name: &str, bound: SocketAddr) -> Result<Advertisement, ZeroconfError> {
        let ip = bound.ip();
        if ip.is_loopback() {
            return Err(ZeroconfError::Loopback(ip));
        }
        let host = format!("{}.local.", host_label());
        let service = if ip.is_unspecified() {
            // Every interface's addresses of the listening family, kept up to date as
            // addresses come and go.
            let family = if ip.is_ipv4() {
                IfKind::IPv4
            } else {
                IfKind::All
            };
            let mut service =
                ServiceInfo::new(SERVICE_TYPE, name, &host, "", bound.port(), NO_PROPERTIES)?
                    .enable_addr_auto();
            service.set_interfaces(vec![family]);
            service
        } else {
            ServiceInfo::new(SERVICE_TYPE, name, &host, ip, bound.port(), NO_PROPERTIES)?
        };
        let daemon = ServiceDaemon::new()?;
        // Other machines are the audience; the loopback interface has none.
        daemon.disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])?;
        let fullname = service.get_fullname().to_string();
        daemon.register(service)?;
        tracing::info!(
            name = fullname,
            port = bound.port(),
            "wyoming: advertised over mDNS"
        );
        Ok(Advertisement { daemon, fullname })
    }
}

impl Drop for Advertisement {
    fn drop(&mut self) {
        match self.daemon.unregister(&self.fullname) {
            Ok(status) => match status.recv_timeout(GOODBYE) {
                Ok(_) => tracing::info!(
                    name = self.fullname,
                    "wyoming: mDNS advertisement withdrawn"
                ),
                Err(e) => tracing::warn!("zeroconf: no answer to the withdrawal: {e}"),
            },
            Err(e) => tracing::warn!("zeroconf: cannot withdraw the advertisement: {e}"),
        }
        if let Err(e) = self.daemon.shutdown() {
            tracing::warn!("zeroconf: cannot stop the mDNS thread: {e}");
        }
    }
}

/// This machine's host name as one DNS label: what the advertisement's address records
/// are named (`NAME.local.`), the name avahi or Bonjour give the machine as well.
fn host_label() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `buffer.len()` bytes into the buffer it is given.
    let written = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let name = if written == 0 {
        let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
        String::from_utf8_lossy(&buffer[..end]).into_owned()
    } else {
        String::new()
    };
    dns_label(&name)
}

/// The first label of `name` with what DNS labels may not hold replaced; "voxd" when
/// nothing is left.
fn dns_label(name: &str) -> String {
    let first = name.split('.').next().unwrap_or_default();
    let label: String = first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    let label = label.trim_matches('-');
    if label.is_empty() {
        "voxd".to_string()
    } else {
        label.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_become_one_dns_label() {
        assert_eq!(dns_label("kitchen-pi.lan"), "kitchen-pi");
        assert_eq!(dns_label("Wohnzimmer_Pi"), "Wohnzimmer-Pi");
        assert_eq!(dns_label(""), "voxd");
        assert_eq!(dns_label("__"), "voxd");
        assert_eq!(dns_label(&"a".repeat(100)).len(), 63);
    }

    #[test]
    fn a_loopback_server_is_not_advertised() {
        for bound in ["127.0.0.1:10300", "[::1]:10300"] {
            let error = Advertisement::start("voxd", bound.parse().unwrap())
                .err()
                .unwrap();
            assert!(
                error
                    .to_string()
                    .contains("reachable from this machine only"),
                "{error}"
            );
        }
    }
}
