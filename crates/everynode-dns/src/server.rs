//! The DNS listeners: one UDP socket and one TCP listener on the same port, each message
//! decoded and encoded with hickory-proto and answered by [`crate::resolve`].
//!
//! UDP answers that do not fit the client's buffer (512 bytes, or its EDNS size up to
//! 1232) are sent truncated (TC set) so the client retries over TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::resolve::resolve;
use crate::{Shared, Snapshot};

/// The EDNS buffer size advertised and honoured (the 2020 DNS flag day value).
const EDNS_PAYLOAD: u16 = 1232;
/// A TCP connection idle this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Binds UDP and TCP on one port. With port 0, UDP picks the port and TCP takes the same
/// one (tried a few times, in case another program takes it in between).
pub async fn bind(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), String> {
    let mut last = String::new();
    for _ in 0..16 {
        let udp = UdpSocket::bind(listen)
            .await
            .map_err(|e| format!("DNS on {listen} (UDP): {e}"))?;
        let addr = udp.local_addr().map_err(|e| e.to_string())?;
        match TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if listen.port() == 0 => last = e.to_string(),
            Err(e) => return Err(format!("DNS on {listen} (TCP): {e}")),
        }
    }
    Err(format!(
        "DNS on {listen}: no port free for both UDP and TCP: {last}"
    ))
}

fn snapshot(shared: &Shared) -> Option<Arc<Snapshot>> {
    shared.read().unwrap_or_else(|p| p.into_inner()).clone()
}

pub async fn serve_udp(socket: UdpSocket, shared: Shared) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "cluster DNS: UDP receive");
                continue;
            }
        };
        if let Some(reply) = answer(&buf[..n], snapshot(&shared).as_deref(), true)
            && let Err(e) = socket.send_to(&reply, peer).await
        {
            tracing::debug!(error = %e, %peer, "cluster DNS: UDP send");
        }
    }
}

pub async fn serve_tcp(listener: TcpListener, shared: Shared) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(tcp_connection(stream, shared.clone()));
            }
            Err(e) => {
                tracing::debug!(error = %e, "cluster DNS: TCP accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Messages on a TCP connection are each preceded by their length (two bytes).
async fn tcp_connection(mut stream: TcpStream, shared: Shared) {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut msg))
            .await
            .map_or(true, |r| r.is_err())
        {
            return;
        }
        let Some(reply) = answer(&msg, snapshot(&shared).as_deref(), false) else {
            return;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        let mut out = n.to_be_bytes().to_vec();
        out.extend_from_slice(&reply);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// The reply to one request message, encoded; `None` when nothing should be sent (the
/// bytes are not a DNS request at all).
pub fn answer(request: &[u8], snap: Option<&Snapshot>, udp: bool) -> Option<Vec<u8>> {
    let req = match Message::from_vec(request) {
        Ok(m) => m,
        Err(_) => return format_error(request),
    };
    if req.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
    resp.metadata = Metadata::response_from_request(&req.metadata);
    resp.queries = req.queries.clone();
    if req.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        resp.set_edns(edns);
    }
    let code = match (req.metadata.op_code, req.queries.as_slice(), snap) {
        (OpCode::Query, [q], Some(snap)) => {
            let reply = resolve(&snap.table, &snap.zone, q.name(), q.query_type());
            resp.metadata.authoritative = reply.authoritative;
            resp.answers = reply.answers;
            resp.authorities = reply.authority;
            resp.additionals = reply.additional;
            reply.code
        }
        (OpCode::Query, [_], None) => ResponseCode::ServFail,
        (OpCode::Query, _, _) => ResponseCode::FormErr,
        _ => ResponseCode::NotImp,
    };
    resp.metadata.response_code = code;
    let bytes = resp.to_vec().ok()?;
    let limit = if udp {
        usize::from(
            req.edns
                .as_ref()
                .map_or(512, |e| e.max_payload().clamp(512, EDNS_PAYLOAD)),
        )
    } else {
        usize::from(u16::MAX)
    };
    if bytes.len() <= limit {
        return Some(bytes);
    }
    let mut short = resp.truncate();
    short.metadata.id = req.metadata.id;
    short.metadata.message_type = MessageType::Response;
    short.to_vec().ok()
}

/// FORMERR for a message that does not decode, echoing its id and opcode (RFC 1035).
fn format_error(request: &[u8]) -> Option<Vec<u8>> {
    if request.len() < 12 || request[2] & 0x80 != 0 {
        return None;
    }
    let mut out = vec![0u8; 12];
    out[..2].copy_from_slice(&request[..2]);
    out[2] = 0x80 | (request[2] & 0x78); // QR, opcode
    out[3] = ResponseCode::FormErr.low();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::Zone;
    use everynode_api::service_table::ServiceTable;
    use hickory_proto::op::Query;
    use hickory_proto::rr::{Name, RecordType};
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use serde_json::json;

    fn snap(endpoints: usize) -> Snapshot {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "many", "namespace": "ns"}, "spec": {"clusterIP": "None"}}))
        .expect("service");
        let eps: Vec<_> = (0..endpoints)
            .map(|i| json!({"addresses": [format!("10.1.{}.{}", i / 250, i % 250 + 1)]}))
            .collect();
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "many-x", "namespace": "ns", "labels": {"kubernetes.io/service-name": "many"}},
            "addressType": "IPv4", "endpoints": eps}))
        .expect("slice");
        Snapshot {
            table: ServiceTable::build([&svc], [&slice]),
            zone: Zone::new("cluster.local", 7).expect("zone"),
        }
    }

    fn query(name: &str, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 4242;
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(
            Name::from_ascii(name).expect("name"),
            RecordType::A,
        ));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().expect("encode")
    }

    fn decode(b: &[u8]) -> Message {
        Message::from_vec(b).expect("decode")
    }

    #[test]
    fn answers_are_authoritative_and_echo_the_question() {
        let s = snap(3);
        let r = decode(
            &answer(&query("many.ns.svc.cluster.local.", None), Some(&s), true).expect("reply"),
        );
        assert_eq!(r.metadata.id, 4242);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert!(
            r.metadata.authoritative
                && r.metadata.recursion_desired
                && !r.metadata.recursion_available
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.queries.len(), 1);
        assert_eq!(r.answers.len(), 3);
        // Not synced yet: SERVFAIL rather than a false NXDOMAIN.
        let r =
            decode(&answer(&query("many.ns.svc.cluster.local.", None), None, true).expect("reply"));
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        // Outside the zone.
        let r = decode(&answer(&query("example.com.", None), Some(&s), true).expect("reply"));
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        assert!(!r.metadata.authoritative);
    }

    #[test]
    fn large_answers_are_truncated_over_udp_only() {
        let s = snap(200);
        let q = query("many.ns.svc.cluster.local.", None);
        let r = decode(&answer(&q, Some(&s), true).expect("reply"));
        assert!(r.metadata.truncation && r.answers.is_empty());
        assert_eq!(r.metadata.id, 4242);
        let r = decode(&answer(&q, Some(&s), false).expect("reply"));
        assert!(!r.metadata.truncation);
        assert_eq!(r.answers.len(), 200);
        // With EDNS the client's larger buffer is used (70 records fit in 1232 bytes).
        let s = snap(70);
        let r = decode(
            &answer(
                &query("many.ns.svc.cluster.local.", Some(4096)),
                Some(&s),
                true,
            )
            .expect("reply"),
        );
        assert!(!r.metadata.truncation);
        assert_eq!(r.answers.len(), 70);
        assert!(r.edns.is_some());
    }

    #[test]
    fn garbage_gets_formerr_or_nothing() {
        assert_eq!(answer(b"xy", None, true), None);
        let mut junk = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        junk.extend_from_slice(&[0xff; 5]);
        let r = answer(&junk, None, true).expect("formerr");
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0f, 1);
        // A response is never answered (no loops between servers).
        let mut resp = junk.clone();
        resp[2] |= 0x80;
        assert_eq!(answer(&resp, None, true), None);
    }

    #[tokio::test]
    async fn serves_udp_and_tcp_on_one_port() {
        let shared: Shared = Arc::default();
        *shared.write().expect("lock") = Some(Arc::new(snap(2)));
        let (udp, tcp) = bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let addr = udp.local_addr().expect("addr");
        assert_eq!(tcp.local_addr().expect("addr"), addr);
        let t1 = tokio::spawn(serve_udp(udp, shared.clone()));
        let t2 = tokio::spawn(serve_tcp(tcp, shared));
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        client
            .send_to(&query("many.ns.svc.cluster.local.", None), addr)
            .await
            .expect("send");
        let mut buf = vec![0u8; 1500];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
            .await
            .expect("in time")
            .expect("recv");
        assert_eq!(decode(&buf[..n]).answers.len(), 2);
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let q = query("many.ns.svc.cluster.local.", None);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        s.write_all(&framed).await.expect("write");
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.expect("len");
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut body).await.expect("body");
        assert_eq!(decode(&body).answers.len(), 2);
        t1.abort();
        t2.abort();
    }
}
