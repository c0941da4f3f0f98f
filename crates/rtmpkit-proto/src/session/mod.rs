//! Sessions.
#![allow(missing_docs)] pub struct ClientSession; pub struct ServerSession;
