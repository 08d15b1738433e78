//! Prometheus metrics kept in atomics: counting and timing cost a few relaxed atomic adds on the
//! hot path, and nothing is allocated per request. Rendered as Prometheus text for GET /metrics.
//! Depends on nothing else in the crate.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// How a refresh ended (SPEC §8's names, and `error` for a 500, which is a bug and must not hide
/// among the outages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    Ok,
    GraceReplay,
    ReuseRevoked,
    Invalid,
    InvalidUser,
    Missing,
    StoreUnavailable,
    Error,
}

impl RefreshOutcome {
    const ALL: [RefreshOutcome; 8] = [
        RefreshOutcome::Ok,
        RefreshOutcome::GraceReplay,
        RefreshOutcome::ReuseRevoked,
        RefreshOutcome::Invalid,
        RefreshOutcome::InvalidUser,
        RefreshOutcome::Missing,
        RefreshOutcome::StoreUnavailable,
        RefreshOutcome::Error,
    ];
    fn label(self) -> &'static str {
        match self {
            RefreshOutcome::Ok => "ok",
            RefreshOutcome::GraceReplay => "grace_replay",
            RefreshOutcome::ReuseRevoked => "reuse_revoked",
            RefreshOutcome::Invalid => "invalid",
            RefreshOutcome::InvalidUser => "invalid_user",
            RefreshOutcome::Missing => "missing",
            RefreshOutcome::StoreUnavailable => "store_unavailable",
            RefreshOutcome::Error => "error",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    Ok,
    InvalidCredentials,
    Throttled,
    StoreUnavailable,
    Error,
}

impl LoginOutcome {
    const ALL: [LoginOutcome; 5] = [
        LoginOutcome::Ok,
        LoginOutcome::InvalidCredentials,
        LoginOutcome::Throttled,
        LoginOutcome::StoreUnavailable,
        LoginOutcome::Error,
    ];
    fn label(self) -> &'static str {
        match self {
            LoginOutcome::Ok => "ok",
            LoginOutcome::InvalidCredentials => "invalid_credentials",
            LoginOutcome::Throttled => "throttled",
            LoginOutcome::StoreUnavailable => "store_unavailable",
            LoginOutcome::Error => "error",
        }
    }
}

pub struct Metrics {
    enabled: bool,
    refreshes: [AtomicU64; RefreshOutcome::ALL.len()],
    logins: [AtomicU64; LoginOutcome::ALL.len()],
    /// One histogram per named route, plus one for requests no route matched (the last).
    routes: Vec<(&'static str, Histogram)>,
    store: Histogram,
    csrf_refusals: AtomicU64,
}

impl Metrics {
    /// `route_names` are the names the router gives its resources.
    pub fn new(enabled: bool, route_names: &[&'static str]) -> Self {
        let mut routes: Vec<(&'static str, Histogram)> = route_names
            .iter()
            .map(|n| (*n, Histogram::default()))
            .collect();
        routes.push(("unmatched", Histogram::default()));
        Self {
            enabled,
            refreshes: Default::default(),
            logins: Default::default(),
            routes,
            store: Histogram::default(),
            csrf_refusals: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn refresh(&self, outcome: RefreshOutcome) {
        if self.enabled {
            self.refreshes[outcome as usize].fetch_add(1, Relaxed);
        }
    }

    pub fn login(&self, outcome: LoginOutcome) {
        if self.enabled {
            self.logins[outcome as usize].fetch_add(1, Relaxed);
        }
    }

    pub fn request(&self, route: Option<&str>, elapsed: Duration) {
        if !self.enabled {
            return;
        }
        let last = self.routes.len() - 1;
        let i = route
            .and_then(|r| self.routes[..last].iter().position(|(n, _)| *n == r))
            .unwrap_or(last);
        self.routes[i].1.observe(elapsed);
    }

    pub fn store_call(&self, elapsed: Duration) {
        if self.enabled {
            self.store.observe(elapsed);
        }
    }

    pub fn csrf_refused(&self) {
        if self.enabled {
            self.csrf_refusals.fetch_add(1, Relaxed);
        }
    }

    pub fn refresh_count(&self, outcome: RefreshOutcome) -> u64 {
        self.refreshes[outcome as usize].load(Relaxed)
    }

    /// The Prometheus text exposition format, with counters kept elsewhere appended as
    /// `(name, help, value)`.
    pub fn render(&self, counters: &[(&str, &str, u64)]) -> String {
        let mut out = String::with_capacity(8 * 1024);
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        out.push_str("# HELP refreshd_refreshes_total Refresh requests by outcome.\n");
        out.push_str("# TYPE refreshd_refreshes_total counter\n");
        for o in RefreshOutcome::ALL {
            let n = self.refreshes[o as usize].load(Relaxed);
            let _ = writeln!(
                out,
                "refreshd_refreshes_total{{outcome=\"{}\"}} {n}",
                o.label()
            );
        }
        out.push_str("# HELP refreshd_logins_total Login requests by outcome.\n");
        out.push_str("# TYPE refreshd_logins_total counter\n");
        for o in LoginOutcome::ALL {
            let n = self.logins[o as usize].load(Relaxed);
            let _ = writeln!(
                out,
                "refreshd_logins_total{{outcome=\"{}\"}} {n}",
                o.label()
            );
        }
        out.push_str("# HELP refreshd_csrf_refusals_total Cookie-authenticated requests refused by the CSRF check.\n");
        out.push_str("# TYPE refreshd_csrf_refusals_total counter\n");
        let _ = writeln!(
            out,
            "refreshd_csrf_refusals_total {}",
            self.csrf_refusals.load(Relaxed)
        );
        out.push_str("# HELP refreshd_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE refreshd_request_duration_seconds histogram\n");
        for (route, h) in &self.routes {
            h.render(
                &mut out,
                "refreshd_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        out.push_str("# HELP refreshd_store_call_duration_seconds Latency of each store call.\n");
        out.push_str("# TYPE refreshd_store_call_duration_seconds histogram\n");
        self.store
            .render(&mut out, "refreshd_store_call_duration_seconds", "");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_as_prometheus_text() {
        let m = Metrics::new(true, &["cookie.refresh"]);
        m.refresh(RefreshOutcome::Ok);
        m.refresh(RefreshOutcome::Ok);
        m.refresh(RefreshOutcome::ReuseRevoked);
        m.login(LoginOutcome::Throttled);
        m.request(Some("cookie.refresh"), Duration::from_micros(300));
        m.request(Some("nope"), Duration::from_millis(3));
        m.store_call(Duration::from_micros(80));
        let text = m.render(&[]);
        assert!(
            text.contains("refreshd_refreshes_total{outcome=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("refreshd_refreshes_total{outcome=\"reuse_revoked\"} 1\n"));
        assert!(text.contains("refreshd_refreshes_total{outcome=\"store_unavailable\"} 0\n"));
        assert!(text.contains("refreshd_logins_total{outcome=\"throttled\"} 1\n"));
        assert!(text.contains(
            "refreshd_request_duration_seconds_bucket{route=\"cookie.refresh\",le=\"0.0005\"} 1\n"
        ));
        assert!(text.contains(
            "refreshd_request_duration_seconds_bucket{route=\"cookie.refresh\",le=\"0.00025\"} 0\n"
        ));
        assert!(text.contains("refreshd_request_duration_seconds_count{route=\"unmatched\"} 1\n"));
        assert!(text.contains("refreshd_store_call_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
        assert!(text.contains("refreshd_store_call_duration_seconds_count 1\n"));
    }

    #[test]
    fn a_disabled_registry_counts_nothing() {
        let m = Metrics::new(false, &[]);
        m.refresh(RefreshOutcome::Ok);
        assert_eq!(m.refresh_count(RefreshOutcome::Ok), 0);
    }
}
