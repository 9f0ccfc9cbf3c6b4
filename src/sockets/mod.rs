//! sockets (under construction)
