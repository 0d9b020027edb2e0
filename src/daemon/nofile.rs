//! The open-file limit. Every HTTP connection, run log and child's pipe is a file
//! descriptor, and the soft `RLIMIT_NOFILE` that a shell or service manager hands
//! down is often 1024 (or less), far below the hard limit. At start the daemon
//! raises the soft limit to the hard one, and the HTTP server's default connection
//! cap is derived from the result, so that connections can never use up the
//! descriptors the jobs need.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The most connections the default cap allows, however high the limit.
const MAX_DEFAULT_CONNECTIONS: usize = 4096;

/// Used when the hard limit is "unlimited", which Linux does not accept as a soft
/// limit for `RLIMIT_NOFILE` (it must not exceed `fs.nr_open`).
const NR_OPEN_FALLBACK: u64 = 1 << 20;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit in force
/// afterwards (`None`: unlimited). A refusal is logged and leaves the limit as it was.
pub(crate) fn raise_nofile_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    let target = limit.maximum.unwrap_or_else(nr_open);
    let current = limit.current;
    if current.is_none_or(|c| c >= target) {
        tracing::info!(
            soft = %shown(current),
            hard = %shown(limit.maximum),
            "open file limit"
        );
        return current;
    }
    let raised = Rlimit {
        current: Some(target),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::info!(
                from = %shown(current),
                soft = target,
                hard = %shown(limit.maximum),
                "raised the open file limit"
            );
            Some(target)
        }
        Err(err) => {
            tracing::warn!(
                soft = %shown(current),
                target,
                %err,
                "cannot raise the open file limit"
            );
            current
        }
    }
}

/// A limit for the log: its number, or `unlimited`.
fn shown(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".to_string(), |n| n.to_string())
}

/// `fs.nr_open`, the ceiling of `RLIMIT_NOFILE`.
fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(NR_OPEN_FALLBACK)
}

/// The default `max_connections`: half the open-file limit (the other half stays for
/// logs, pipes and the rest), at least 1 and at most 4096.
pub(crate) fn default_max_connections(nofile: Option<u64>) -> usize {
    nofile.map_or(MAX_DEFAULT_CONNECTIONS, |n| {
        usize::try_from(n / 2)
            .unwrap_or(MAX_DEFAULT_CONNECTIONS)
            .clamp(1, MAX_DEFAULT_CONNECTIONS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_max_connections_is_half_the_limit_within_bounds() {
        assert_eq!(default_max_connections(Some(256)), 128);
        assert_eq!(default_max_connections(Some(1024)), 512);
        assert_eq!(default_max_connections(Some(65536)), 4096);
        assert_eq!(default_max_connections(Some(1)), 1);
        assert_eq!(default_max_connections(None), 4096);
    }

    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_one() {
        let after = raise_nofile_limit();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(after, limit.current);
        if let (Some(soft), Some(hard)) = (limit.current, limit.maximum) {
            assert_eq!(soft, hard);
        }
    }
}
