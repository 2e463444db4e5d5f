//! Crashes and shutdowns: nothing partial ever becomes visible, nothing acknowledged is lost.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::support::*;

/// Opens a request, sends part of its body and leaves the connection open.
fn half_request(addr: &str, head: &str, body: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    s.flush().unwrap();
    s
}

#[tokio::test]
async fn kill_during_uploads_leaves_nothing_partial() {
    let mut s = Server::start();
    let c = client();
    let full: Vec<u8> = (0..8_000_000u32).map(|i| (i % 253) as u8).collect();
    let d = sha256(&full);

    // An acknowledged chunk of a chunked upload must survive the crash.
    let r = c.post(s.url("/v2/crash/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location");
    let r =
        c.patch(s.url(&loc)).header("content-range", "0-999999").body(full[..1_000_000].to_vec()).send().await.unwrap();
    assert_eq!(r.status(), 202);

    // In flight when the server dies: a monolithic push and the next chunk.
    let mono = half_request(
        &s.addr,
        &format!(
            "POST /v2/crash/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            full.len()
        ),
        &full[..3_000_000],
    );
    let chunk = half_request(
        &s.addr,
        &format!(
            "PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Range: 1000000-7999999\r\nContent-Length: 7000000\r\n\r\n"
        ),
        &full[1_000_000..4_000_000],
    );
    std::thread::sleep(Duration::from_millis(300));
    s.kill();
    drop((mono, chunk));

    let s2 = Server::start_in(&s.data_dir);
    let r = c.head(s2.url(&format!("/v2/crash/blobs/{d}"))).send().await.unwrap();
    assert_eq!(r.status(), 404, "a half-received blob must not be visible");
    assert!(files_under(&s2.blobs_dir()).is_empty(), "no blob file after a crash: {:?}", files_under(&s2.blobs_dir()));
    let r = c.get(s2.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "range"), "0-999999", "the acknowledged chunk survived, the cut one did not");

    // The client resumes on the restarted server and finishes.
    let r = c
        .patch(s2.url(&loc))
        .header("content-range", "1000000-7999999")
        .body(full[1_000_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = c.put(s2.url(&format!("{loc}?digest={d}"))).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = c.get(s2.url(&format!("/v2/crash/blobs/{d}"))).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &full[..]);
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let mut s = Server::start();
    let c = client();
    let r = c.post(s.url("/v2/graceful/blobs/uploads/")).send().await.unwrap();
    let loc = header(&r, "location");
    let body = vec![5u8; 2_000_000];
    let mut conn = half_request(
        &s.addr,
        &format!("PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len()),
        &body[..1_000_000],
    );
    std::thread::sleep(Duration::from_millis(200));
    let pid = s.pid();
    unsafe { libc::kill(pid, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(200));
    conn.write_all(&body[1_000_000..]).unwrap();
    let mut resp = String::new();
    use std::io::Read;
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4096];
    let n = conn.read(&mut buf).unwrap();
    resp.push_str(&String::from_utf8_lossy(&buf[..n]));
    assert!(resp.starts_with("HTTP/1.1 202"), "in-flight chunk completed: {resp}");
    assert!(resp.to_ascii_lowercase().contains("range: 0-1999999"), "{resp}");
    drop(conn);
    let status = s.terminate();
    assert!(status.success(), "graceful exit, got {status:?}");
}
