//! The three stores a scenario runs on, and `on_every_store!`, which runs a scenario on each.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
    /// A three-master Redis Cluster this test run starts.
    Cluster,
}

/// Runs each named scenario `async fn name(backend: Backend)` once per store: in-process, one
/// Redis, and a Redis Cluster.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod memory_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Memory).await
                }
            )*
        }
        mod redis_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Redis).await
                }
            )*
        }
        mod cluster_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Cluster).await
                }
            )*
        }
    };
}
