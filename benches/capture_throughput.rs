//! Throughput of the capture pipeline on a generated 1M-answer savefile: libpcap read → frame decode → duplicate
//! hash → de-duplication → DNS parse. Each answer is written three times (as device `any` sees it), so the file
//! holds 3M frames. Run with `cargo bench --bench capture_throughput`; set `CAPTURE_BENCH_ANSWERS` to change the size.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use network_mapper::capture::dedup::{
    DEFAULT_MAX_ENTRIES, DEFAULT_WINDOW_MICROS, DedupKey, Deduplicator,
};
use network_mapper::capture::dns::{self, DnsResponse};
use network_mapper::capture::frame::{FrameDecoder, LinkType};
use network_mapper::capture::source::{Next, open_file};
use network_mapper::capture::synth::{self, PcapWriter, Record};

const COPIES: usize = 3;

fn main() {
    let answers: usize = std::env::var("CAPTURE_BENCH_ANSWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("answers.pcap");
    write_capture(&path, answers);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    let started = Instant::now();
    let (frames, counted, duplicates) = run_pipeline(&path);
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(counted, answers, "every answer counted once");
    assert_eq!(duplicates, answers * (COPIES - 1));
    println!(
        "{frames} frames ({:.0} MB), {counted} answers counted, {duplicates} duplicates dropped in {elapsed:.2} s: \
         {:.2} M frames/s, {:.2} M answers/s",
        size as f64 / 1e6,
        frames as f64 / elapsed / 1e6,
        counted as f64 / elapsed / 1e6,
    );
}

/// Answers from a CoreDNS pod to 250 clients, for 1000 names; each copy 5 µs after the previous one.
fn write_capture(path: &std::path::Path, answers: usize) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).expect("create capture"));
    let mut writer = PcapWriter::new(file, LinkType::LinuxSll2.linktype()).expect("pcap header");
    let server: SocketAddr = "10.244.0.10:53".parse().unwrap();
    for i in 0..answers {
        let name = format!("svc-{}.shop.svc.cluster.local", i % 1000);
        let message = synth::response(
            i as u16,
            &name,
            &[Record::A(&name, Ipv4Addr::new(10, 96, (i % 200) as u8, 1))],
        );
        let client = SocketAddr::new(
            Ipv4Addr::new(10, 244, 1, (i % 250) as u8 + 1).into(),
            30000 + (i % 30000) as u16,
        );
        let frame = synth::frame(
            LinkType::LinuxSll2,
            &synth::udp_packet(server, client, &message),
        );
        for copy in 0..COPIES {
            writer
                .write(1_700_000_000_000_000 + (i * 20 + copy * 5) as i64, &frame)
                .expect("write record");
        }
    }
}

fn run_pipeline(path: &std::path::Path) -> (usize, usize, usize) {
    let mut source = open_file(path, None).expect("open capture");
    let link = source.link_type();
    let mut decoder = FrameDecoder::new();
    let mut dedup = Deduplicator::new(DEFAULT_WINDOW_MICROS, DEFAULT_MAX_ENTRIES);
    let (mut frames, mut counted, mut duplicates) = (0, 0, 0);
    while let Next::Packet(packet) = source.next().expect("read capture") {
        frames += 1;
        let at = packet.at;
        decoder.decode(link, packet.data, &mut |m| {
            let Some(message_hash) = dns::dedup_key_hash(m.bytes) else {
                return;
            };
            let key = DedupKey {
                client: m.dst.ip(),
                client_port: m.dst.port(),
                message_hash,
            };
            if !dedup.first_sighting(key, at) {
                duplicates += 1;
            } else if let DnsResponse::Answer(_) = dns::parse_response(m.bytes) {
                counted += 1;
            }
        });
    }
    (frames, counted, duplicates)
}
