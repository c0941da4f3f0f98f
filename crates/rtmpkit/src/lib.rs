//! rtmpkit
