//! The HTTP query API.
