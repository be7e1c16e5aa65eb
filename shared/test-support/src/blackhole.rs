//! An endpoint that accepts connections, reads what is sent and never answers: a service that
//! took the request and went silent (the answer lost, the call left to its timeout).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The running endpoint; stops (and drops every connection) when dropped.
pub struct BlackHole {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl BlackHole {
    pub fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let addr = listener.local_addr().expect("its address");
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU32::new(0));
        let thread = {
            let stop = stop.clone();
            let connections = connections.clone();
            std::thread::spawn(move || {
                let mut held: Vec<TcpStream> = Vec::new();
                let mut buf = [0u8; 16 * 1024];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((stream, _)) = listener.accept() {
                        let _ = stream.set_nonblocking(true);
                        connections.fetch_add(1, Ordering::SeqCst);
                        held.push(stream);
                    }
                    // Read (and drop) whatever comes, so the client's writes never block.
                    for s in &mut held {
                        let _ = s.read(&mut buf);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        BlackHole {
            addr,
            stop,
            connections,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
