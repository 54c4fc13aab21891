//! Start-up cost of big directory files: a 100,000-row CSV and a 100,000-card vCard file read
//! from disk by `Directory::load` (decode, parse, index for the picker), each in a fresh child
//! process so that its peak memory is its own.
//!
//! The files are generated once in a temporary directory: names from several languages (so
//! folding has work to do), one or two numbers each, e-mail, company and department; the CSV
//! also in Windows-1252 (Excel on Western Windows), which must be decoded first. Each file is
//! loaded five times; printed are the median and the spread of the load time and the peak
//! resident memory (VmHWM) of the child, with its resident memory before loading for
//! comparison. Run in release: `cargo bench --bench directory_load`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use switchboard::config;
use switchboard::directory::Directory;

const ROWS: usize = 100_000;
const RUNS: usize = 5;

const FIRST: &[&str] = &[
    "José",
    "María",
    "Lucía",
    "Ángel",
    "John",
    "Mary",
    "Aino",
    "Väinö",
    "Søren",
    "Björn",
    "Jürgen",
    "François",
    "Chloé",
    "Zoë",
    "Patricia",
    "Robert",
    "Mikko",
    "Åsa",
];
const LAST: &[&str] = &[
    "García",
    "Müller",
    "Hämeenlinna",
    "Ørsted",
    "Dupré",
    "Smith",
    "Johnson",
    "Virtanen",
    "Nielsen",
    "Lindqvist",
    "Moreau",
    "Fernández",
    "Brown",
    "Schäfer",
];
const DEPARTMENTS: &[&str] = &["Accounts", "Sales", "Support", "Logistics", "Legal", "IT"];

/// The i-th generated person: (name, first number, optional second number, e-mail, company,
/// department).
fn person(i: usize) -> (String, String, Option<String>, String, String, &'static str) {
    let first = FIRST[i % FIRST.len()];
    let last = LAST[(i / FIRST.len()) % LAST.len()];
    let name = format!("{first} {last} {i}");
    let number = format!(
        "+34 91 {:03} {:02} {:02}",
        i % 1000,
        (i / 1000) % 100,
        i % 97
    );
    let second = (i % 3 == 0).then(|| format!("{}", 10_000 + i % 90_000));
    let email = format!("p{i}@example.com");
    let company = format!("Compañía {}", i % 500);
    (
        name,
        number,
        second,
        email,
        company,
        DEPARTMENTS[i % DEPARTMENTS.len()],
    )
}

fn write_files(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut csv = String::from("Name,Phone,Mobile,E-mail,Company,Department\r\n");
    let mut vcf = String::new();
    for i in 0..ROWS {
        let (name, number, second, email, company, department) = person(i);
        let mobile = second.clone().unwrap_or_default();
        let _ = write!(
            csv,
            "{name},{number},{mobile},{email},{company},{department}\r\n"
        );
        let _ = write!(
            vcf,
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{name}\r\nTEL;TYPE=WORK:{number}\r\n"
        );
        if let Some(second) = second {
            let _ = write!(vcf, "TEL;TYPE=CELL:{second}\r\n");
        }
        let _ = write!(
            vcf,
            "EMAIL:{email}\r\nORG:{company};{department}\r\nEND:VCARD\r\n"
        );
    }
    let (cp1252, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&csv);
    assert!(!unmappable, "the names fit Windows-1252");
    let files = [
        (
            "CSV, UTF-8",
            dir.join("people.csv"),
            csv.as_bytes().to_vec(),
        ),
        (
            "CSV, Windows-1252",
            dir.join("people-1252.csv"),
            cp1252.into_owned(),
        ),
        ("vCard 3.0, UTF-8", dir.join("people.vcf"), vcf.into_bytes()),
    ];
    files
        .into_iter()
        .map(|(what, path, bytes)| {
            std::fs::write(&path, bytes).expect("writing a generated file");
            (what, path)
        })
        .collect()
}

/// A `VmHWM:`/`VmRSS:` figure of this process, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[allow(clippy::disallowed_methods)] // a benchmark measures real time
fn now() -> Instant {
    Instant::now()
}

/// The child: loads `path` once and prints `ms entries rss_before_kib peak_kib`.
fn load_once(path: &Path) {
    let before = status_kib("VmRSS:");
    let start = now();
    let (directory, warnings) = Directory::load(&config::Directory {
        corporate: vec![path.to_path_buf()],
        ..config::Directory::default()
    });
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    assert!(warnings.is_empty(), "{warnings:?}");
    println!(
        "{ms:.1} {} {before} {}",
        directory.len(),
        status_kib("VmHWM:")
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--load-once") {
        load_once(Path::new(&args[at + 1]));
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let files = write_files(dir.path());
    let me = std::env::current_exe().expect("the benchmark's own path");
    println!("Directory::load of {ROWS} people from disk, {RUNS} runs each, one process a run:");
    for (what, path) in files {
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let mut times = Vec::new();
        let mut peaks = Vec::new();
        let (mut entries, mut before) = (0, 0);
        for _ in 0..RUNS {
            let out = Command::new(&me)
                .arg("--load-once")
                .arg(&path)
                .output()
                .expect("running the child");
            assert!(out.status.success(), "{out:?}");
            let text = String::from_utf8_lossy(&out.stdout);
            let fields: Vec<f64> = text
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            let [ms, n, rss, peak] = fields[..] else {
                panic!("child said {text:?}")
            };
            times.push(ms);
            peaks.push(peak);
            (entries, before) = (n as u64, rss as u64);
        }
        times.sort_by(f64::total_cmp);
        peaks.sort_by(f64::total_cmp);
        println!(
            "  {what:<18} {:>5.1} MB, {entries} entries: load median {:.0} ms (min {:.0}, max \
             {:.0}); peak RSS median {:.0} MiB (min {:.0}, max {:.0}; {:.0} MiB before loading)",
            size as f64 / 1e6,
            times[RUNS / 2],
            times[0],
            times[RUNS - 1],
            peaks[RUNS / 2] / 1024.0,
            peaks[0] / 1024.0,
            peaks[RUNS - 1] / 1024.0,
            before as f64 / 1024.0,
        );
    }
}
