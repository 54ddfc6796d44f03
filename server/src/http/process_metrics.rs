//! The process's own gauges in `/metrics`: resident memory, open file
//! descriptors, threads and live async tasks (`p2pnet_process_*`,
//! `p2pnet_tokio_alive_tasks`), read at each scrape. A leak
//! of any of them shows as a line that only grows (the soak campaign in
//! scripts/load.sh reads them).

use prometheus_client::{metrics::gauge::Gauge, registry::Registry};

/// Gauges refreshed from `/proc/self` and the runtime before each encode.
#[derive(Default)]
pub struct ProcessMetrics {
    resident_bytes: Gauge,
    open_fds: Gauge,
    threads: Gauge,
    alive_tasks: Gauge,
}

impl ProcessMetrics {
    /// Adds the gauges to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            self.resident_bytes.clone(),
        );
        registry.register(
            "process_open_fds",
            "Open file descriptors (sockets included)",
            self.open_fds.clone(),
        );
        registry.register(
            "process_threads",
            "Threads of the server process",
            self.threads.clone(),
        );
        registry.register(
            "tokio_alive_tasks",
            "Async tasks alive in the server's runtime",
            self.alive_tasks.clone(),
        );
    }

    /// Reads the current values; a figure the system does not give keeps
    /// its last value.
    pub fn refresh(&self) {
        if let Some(status) = read_status() {
            if let Some(kb) = status_field(&status, "VmRSS:") {
                self.resident_bytes.set(kb.saturating_mul(1024));
            }
            if let Some(threads) = status_field(&status, "Threads:") {
                self.threads.set(threads);
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds
                .set(i64::try_from(fds.count()).unwrap_or(i64::MAX));
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let tasks = runtime.metrics().num_alive_tasks();
            self.alive_tasks
                .set(i64::try_from(tasks).unwrap_or(i64::MAX));
        }
    }
}

fn read_status() -> Option<String> {
    std::fs::read_to_string("/proc/self/status").ok()
}

/// The number after `name` in `/proc/self/status` (e.g. `VmRSS:  1234 kB`).
fn status_field(status: &str, name: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_by_name() {
        let status = "Name:\tp2pnet-server\nVmRSS:\t   20480 kB\nThreads:\t9\n";
        assert_eq!(status_field(status, "VmRSS:"), Some(20480));
        assert_eq!(status_field(status, "Threads:"), Some(9));
        assert_eq!(status_field(status, "VmSwap:"), None);
    }

    #[tokio::test]
    async fn a_scrape_sees_this_process() {
        let metrics = ProcessMetrics::default();
        metrics.refresh();
        assert!(metrics.resident_bytes.get() > 1_000_000);
        assert!(metrics.open_fds.get() >= 3);
        assert!(metrics.threads.get() >= 1);
        let before = metrics.alive_tasks.get();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = stopped.await;
        });
        metrics.refresh();
        assert_eq!(metrics.alive_tasks.get(), before + 1);
        drop(stop);
        task.await.expect("task");
        metrics.refresh();
        assert_eq!(metrics.alive_tasks.get(), before);
    }
}
