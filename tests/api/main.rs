//! Integration tests: the real app over real HTTP, on the memory store and on a real Redis.

mod helpers;

mod bodies;
mod browser;
mod cli;
mod codes;
mod concurrency;
mod config;
mod create;
mod email;
mod eviction;
mod landing;
mod languages;
mod limits;
mod logs;
mod ops;
mod outage;
mod redeem;
mod reload;
mod revocation;
mod scale;
mod schedule;
mod security;
mod store;
mod tokens;
mod verifiers;

/// Declares one `#[tokio::test]` per backend (memory, Redis, Redis Cluster) for an
/// `async fn(Backend)`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() {
                    super::$name($crate::helpers::Backend::Memory).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() {
                    super::$name($crate::helpers::Backend::Redis).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn cluster() {
                    super::$name($crate::helpers::Backend::Cluster).await;
                }
            }
        )+
    };
}
