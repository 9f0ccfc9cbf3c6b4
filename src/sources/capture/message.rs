//! What the frame decoder hands on: one whole DNS message with its endpoints. Its own module so that the frame
//! walk and the TCP reassembler both produce it without importing each other.

use std::net::SocketAddr;

/// One whole DNS message as seen on the wire, TCP length prefix stripped. `src` is the server, `dst` the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsMessage<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub tcp: bool,
    pub bytes: &'a [u8],
}
