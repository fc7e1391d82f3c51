//! What the integration tests share: servers started through the same `server::run` as the
//! binary ([`server`]), Redis topologies of real `redis-server` processes ([`redis`]), cells
//! over them ([`cells`]), a client over any server ([`api`]) and request builders
//! ([`requests`]). Test files import from here only, never from one another.

#![allow(dead_code)]

pub mod api;
pub mod cells;
pub mod grpc;
pub mod process;
pub mod redis;
pub mod requests;
pub mod server;

pub use requests::*;
pub use server::{Served, TestServer, ACCOUNT};
