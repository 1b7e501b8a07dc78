//! Request extraction shared by the routes: body decoding and credentials.

pub mod auth;
pub mod body;
