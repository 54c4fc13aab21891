//! kamailio 5.6 as the lab's registrar and record-routing proxy.
//!
//! The configuration is `tests/lab/kamailio.cfg`, a template filled in per instance: it listens
//! on UDP and TCP `127.X.Y.1:5060` (the domain is that IP), keeps registrations in memory, and
//! puts its ctl/jsonrpc sockets and pid file in the instance's private run directory, so any
//! number of instances run side by side. Digest credentials come from a `db_text` directory
//! written from the `users` given to [`Kamailio::start`]. [`Kamailio::start_ipv6`] listens on
//! `[::1]` instead, on a free port, serving a SIP domain by name.

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::net::{hosts, Net};
use super::process::{self, run_bounded, Peer};
use super::{lab_dir, require_tool, run_dir};

/// Which requests kamailio challenges for digest credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KamailioAuth {
    /// Nothing is challenged; anyone may register any AOR.
    None,
    /// REGISTER is challenged (401 / WWW-Authenticate). Calls are not. The default.
    Register,
    /// REGISTER (401) and initial INVITE / REFER / SUBSCRIBE / MESSAGE whose From is a local
    /// user (407 / Proxy-Authenticate).
    RegisterAndCalls,
}

/// The certificate kamailio's TLS listener (`127.X.Y.1:5061`) presents.
#[derive(Debug, Clone)]
pub struct KamailioTls {
    /// The certificate chain, PEM (server certificate first).
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
}

/// A running kamailio. Dropping it kills it.
#[derive(Debug)]
pub struct Kamailio {
    ip: Ipv4Addr,
    /// Where it listens for SIP (UDP and TCP).
    sip: SocketAddr,
    /// The SIP domain of its users.
    domain: String,
    tools_ip: Ipv4Addr,
    auth: KamailioAuth,
    users: Vec<(String, String)>,
    log: PathBuf,
    // Field order matters: the process dies before its run directory is removed.
    peer: Peer,
    dir: tempfile::TempDir,
}

impl Kamailio {
    /// Starts kamailio at `net.ip(1)` with digest-authenticated REGISTER for `users`
    /// (`(name, password)` pairs, domain = the IP) and waits (at most 5 s) until it answers
    /// OPTIONS. Panics with its log if it does not come up.
    pub fn start(net: &Net, users: &[(&str, &str)]) -> Kamailio {
        Kamailio::start_with(net, users, KamailioAuth::Register)
    }

    /// Starts kamailio with no digest authentication at all.
    pub fn start_without_auth(net: &Net) -> Kamailio {
        Kamailio::start_with(net, &[], KamailioAuth::None)
    }

    /// Starts kamailio with the given authentication policy.
    pub fn start_with(net: &Net, users: &[(&str, &str)], auth: KamailioAuth) -> Kamailio {
        Kamailio::launch(net, users, auth, None, None)
    }

    /// Starts kamailio without digest authentication that also serves SIP `domain` (a name
    /// the lab's DNS points at it, see [`super::Dnsmasq`]), as one of a hosted PBX's servers.
    pub fn start_for_domain(net: &Net, domain: &str) -> Kamailio {
        Kamailio::launch(net, &[], KamailioAuth::None, None, Some(domain))
    }

    /// Starts kamailio with digest-authenticated REGISTER for `users` and, besides UDP and
    /// TCP on 5060, a TLS listener on `127.X.Y.1:5061` presenting `tls`.
    pub fn start_tls(net: &Net, users: &[(&str, &str)], tls: &KamailioTls) -> Kamailio {
        Kamailio::launch(net, users, KamailioAuth::Register, Some(tls), None)
    }

    fn launch(
        net: &Net,
        users: &[(&str, &str)],
        auth: KamailioAuth,
        tls: Option<&KamailioTls>,
        domain: Option<&str>,
    ) -> Kamailio {
        require_tool("sipsak", "sipsak");
        let ip = net.ip(hosts::KAMAILIO);
        let dir = run_dir("kamailio");
        let cfg_path = write_config(dir.path(), ip.into(), users, domain);
        Kamailio::run(
            net,
            users,
            auth,
            tls,
            dir,
            cfg_path,
            SocketAddr::from((ip, 5060)),
            ip.to_string(),
        )
    }

    /// Starts kamailio listening on UDP and TCP `[::1]:PORT` (a free port) only, serving SIP
    /// `domain` (no DNS: its users name the registrar by address) with digest-authenticated
    /// REGISTER for `users`. Panics with a clear message when `::1` is unavailable.
    pub fn start_ipv6(net: &Net, users: &[(&str, &str)], domain: &str) -> Kamailio {
        let port = free_ipv6_port();
        let sip = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
        let dir = run_dir("kamailio");
        let cfg_path = write_config_listening(dir.path(), &[sip], domain, users, None);
        Kamailio::run(
            net,
            users,
            KamailioAuth::Register,
            None,
            dir,
            cfg_path,
            sip,
            domain.to_owned(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        net: &Net,
        users: &[(&str, &str)],
        auth: KamailioAuth,
        tls: Option<&KamailioTls>,
        dir: tempfile::TempDir,
        cfg_path: PathBuf,
        sip: SocketAddr,
        domain: String,
    ) -> Kamailio {
        let kamailio = require_tool("kamailio", "kamailio");
        let ip = net.ip(hosts::KAMAILIO);
        if let Some(tls) = tls {
            assert!(
                has_tls_module(),
                "the lab needs kamailio's TLS module, which is not installed: \
                 apt-get install --no-install-recommends kamailio-tls-modules"
            );
            let cert = dir.path().join("server-cert.pem");
            let key = dir.path().join("server-key.pem");
            fs::write(&cert, &tls.cert_pem).expect("writing kamailio's TLS certificate");
            fs::write(&key, &tls.key_pem).expect("writing kamailio's TLS key");
            fs::write(
                dir.path().join("tls.cfg"),
                format!(
                    "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
                     require_certificate = no\nprivate_key = {}\ncertificate = {}\n\n\
                     [client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
                     require_certificate = no\n",
                    key.display(),
                    cert.display()
                ),
            )
            .expect("writing kamailio's tls.cfg");
        }
        let log = dir.path().join("kamailio.log");
        let log_file = fs::File::create(&log).expect("creating kamailio.log");
        let mut cmd = Command::new(kamailio);
        cmd.arg("-f").arg(&cfg_path);
        match auth {
            KamailioAuth::None => {}
            KamailioAuth::Register => {
                cmd.args(["-A", "WITH_AUTH"]);
            }
            KamailioAuth::RegisterAndCalls => {
                cmd.args(["-A", "WITH_AUTH", "-A", "WITH_PROXY_AUTH"]);
            }
        }
        if tls.is_some() {
            cmd.args(["-A", "WITH_TLS"]);
        }
        cmd.arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-Y")
            .arg(dir.path())
            .arg("-w")
            .arg(dir.path())
            // Foreground (the process we spawn is the main one), log to stderr.
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("cloning a file handle"))
            .stderr(log_file);
        let peer = Peer::spawn("kamailio", &mut cmd, vec![log.clone()]);
        let mut kam = Kamailio {
            ip,
            sip,
            domain,
            tools_ip: net.ip(hosts::TOOLS),
            auth,
            users: users
                .iter()
                .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
                .collect(),
            log,
            peer,
            dir,
        };
        kam.wait_ready(Duration::from_secs(5));
        kam
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let ready = process::wait_until(timeout, || {
            if let Some(status) = self.peer.try_wait() {
                panic!(
                    "kamailio exited during start-up ({status}):\n{}",
                    self.log_tail(60)
                );
            }
            // Its UDP socket first (cheap), then a real OPTIONS round trip.
            ((self.sip.is_ipv6() || process::udp_bound(self.addr())) && self.ping()).then_some(())
        });
        if ready.is_none() {
            panic!(
                "kamailio at {} did not answer OPTIONS within {timeout:?}:\n{}",
                self.addr(),
                self.log_tail(60)
            );
        }
    }

    /// Its address, `127.X.Y.1`; also the SIP domain of its users.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// `127.X.Y.1:5060` (`[::1]:PORT` with [`Kamailio::start_ipv6`]).
    pub fn addr(&self) -> SocketAddr {
        self.sip
    }

    /// The SIP domain: the IP as a string (the name given to [`Kamailio::start_ipv6`]).
    pub fn domain(&self) -> String {
        self.domain.clone()
    }

    /// `127.X.Y.1:5061`, the TLS listener (with [`Kamailio::start_tls`]).
    pub fn tls_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 5061))
    }

    /// `sip:127.X.Y.1:5060` (`sip:[::1]:PORT`), for registrar / outbound proxy settings.
    pub fn uri(&self) -> String {
        format!("sip:{}", self.sip)
    }

    /// `sip:user@127.X.Y.1` (`sip:user@DOMAIN`).
    pub fn aor(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.domain)
    }

    /// The authentication policy it runs with.
    pub fn auth(&self) -> KamailioAuth {
        self.auth
    }

    /// The users it was given, as `(name, password)`.
    pub fn users(&self) -> &[(String, String)] {
        &self.users
    }

    /// Its private run directory.
    pub fn run_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Whether kamailio itself answers an OPTIONS with 200 (sipsak, at most 2 s; over IPv6,
    /// where sipsak cannot go, one OPTIONS from a socket of our own).
    pub fn ping(&self) -> bool {
        if self.sip.is_ipv6() {
            return options_ping(self.sip);
        }
        let done = run_bounded(
            Command::new("sipsak")
                .arg("-s")
                .arg(self.uri())
                .arg("-H")
                .arg(self.tools_ip.to_string()),
            Duration::from_secs(2),
        );
        done.success()
    }

    /// Sends an OPTIONS to any `uri` through kamailio (e.g. an AOR, which kamailio relays to
    /// the registered contact) and returns sipsak's verbose output if the final answer was
    /// 2xx, or an error with the output. At most 5 s.
    pub fn options(&self, uri: &str) -> Result<String, String> {
        let done = run_bounded(
            Command::new("sipsak")
                .args(["-vv", "-s", uri, "-H"])
                .arg(self.tools_ip.to_string())
                // Send it to kamailio whatever the URI's host is.
                .arg("-p")
                .arg(self.addr().to_string()),
            Duration::from_secs(5),
        );
        if done.success() {
            Ok(done.stdout)
        } else {
            Err(format!(
                "OPTIONS {uri} via kamailio failed ({:?}):\n{}{}",
                done.status, done.stdout, done.stderr
            ))
        }
    }

    /// Runs one RPC command through `kamcmd` on this instance's private ctl socket, e.g.
    /// `rpc(&["ul.dump"])`. Returns stdout, or an error with everything printed.
    pub fn rpc(&self, args: &[&str]) -> Result<String, String> {
        let kamcmd = require_tool("kamcmd", "kamailio");
        let socket = format!("unix:{}/kamailio_ctl", self.dir.path().display());
        let done = run_bounded(
            Command::new(kamcmd).arg("-s").arg(&socket).args(args),
            Duration::from_secs(3),
        );
        // kamcmd exits 0 even for RPC errors; it prints "error: CODE - reason" then.
        if done.success() && !done.stdout.starts_with("error:") && !done.stderr.contains("error") {
            Ok(done.stdout)
        } else {
            Err(format!(
                "kamcmd {args:?} failed ({:?}): {}{}",
                done.status, done.stdout, done.stderr
            ))
        }
    }

    /// The registered contacts of `user` (kamcmd `ul.lookup location user`), as the raw
    /// `Address:` values; empty if none.
    pub fn contacts(&self, user: &str) -> Vec<String> {
        let aor = format!("{user}@{}", self.domain);
        match self.rpc(&["ul.lookup", "location", &aor]) {
            Ok(out) => out
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Address: "))
                .map(str::to_owned)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Everything in the location table (kamcmd `ul.dump`).
    pub fn ul_dump(&self) -> String {
        self.rpc(&["ul.dump"]).unwrap_or_else(|e| e)
    }

    /// Waits until `user` has at least one registered contact and returns the contacts.
    /// Panics with kamailio's log on timeout.
    pub fn wait_registered(&self, user: &str, timeout: Duration) -> Vec<String> {
        process::wait_until(timeout, || {
            let contacts = self.contacts(user);
            (!contacts.is_empty()).then_some(contacts)
        })
        .unwrap_or_else(|| {
            panic!(
                "{user} did not register at kamailio {} within {timeout:?}:\n{}\n{}",
                self.ip,
                self.ul_dump(),
                self.log_tail(40)
            )
        })
    }

    /// Waits until `user` has no registered contact. Panics with kamailio's log on timeout.
    pub fn wait_unregistered(&self, user: &str, timeout: Duration) {
        process::wait_until(timeout, || self.contacts(user).is_empty().then_some(()))
            .unwrap_or_else(|| {
                panic!(
                    "{user} still registered at kamailio {} after {timeout:?}:\n{}",
                    self.ip,
                    self.ul_dump()
                )
            });
    }

    /// Registers `contact` (e.g. `sip:bob@127.X.Y.10:5060`, a sipp UAS) as a binding of
    /// `user`'s AOR for `expires` seconds, with sipsak in usrloc mode (answering the digest
    /// challenge with `password`), and checks that kamailio has it. Panics on failure.
    pub fn register_contact(&self, user: &str, password: &str, contact: &str, expires: u32) {
        // sipsak puts this host in its Via; use the contact's own host.
        let contact_host = contact
            .split('@')
            .nth(1)
            .and_then(|h| h.split([':', ';', '>']).next())
            .map_or_else(|| self.tools_ip.to_string(), str::to_owned);
        let done = run_bounded(
            Command::new("sipsak")
                .args(["-U", "-i", "-s", &self.aor(user), "-C", contact])
                .args(["-a", password, "-x", &expires.to_string(), "-H"])
                .arg(contact_host)
                .arg("-p")
                .arg(self.addr().to_string()),
            Duration::from_secs(5),
        );
        if !done.success() {
            panic!(
                "sipsak could not register {contact} for {user} at {} ({:?}):\n{}{}\n{}",
                self.ip,
                done.status,
                done.stdout,
                done.stderr,
                self.log_tail(30)
            );
        }
        let want = contact.trim_start_matches('<').trim_end_matches('>');
        if !self.contacts(user).iter().any(|c| c == want) {
            panic!(
                "kamailio does not list {want} for {user} after sipsak registered it:\n{}",
                self.ul_dump()
            );
        }
    }

    /// kamailio's whole log (stderr; every request is logged as `LAB-REQ`, every relayed
    /// reply as `LAB-RPL`).
    pub fn log(&self) -> String {
        process::read_lossy(&self.log)
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "----- kamailio {} (last {lines} lines) -----\n{}",
            self.log.display(),
            process::tail(&self.log, lines)
        )
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.peer.try_wait().is_none()
    }
}

/// Writes kamailio's db_text tables (`users` as `(name, password)` in domain `ip`) and its
/// configuration from the lab's template into `dir`; returns the configuration's path. Shared
/// by the loopback lab and the NAT lab's namespace.
pub fn write_config(
    dir: &std::path::Path,
    ip: std::net::IpAddr,
    users: &[(&str, &str)],
    domain: Option<&str>,
) -> PathBuf {
    let listen = [SocketAddr::new(ip, 5060)];
    write_config_listening(dir, &listen, &ip.to_string(), users, domain)
}

/// [`write_config`] listening on UDP and TCP at each of `listen`, with `realm` (an IPv4
/// address or a name) as the users' domain and first alias.
fn write_config_listening(
    dir: &std::path::Path,
    listen: &[SocketAddr],
    realm: &str,
    users: &[(&str, &str)],
    domain: Option<&str>,
) -> PathBuf {
    let db_dir = dir.join("db");
    fs::create_dir(&db_dir).expect("creating kamailio's db_text directory");
    // db_text tables. auth_db reads `subscriber`; its ha1 columns must be nullable or
    // every REGISTER is refused. `version` must list the table.
    fs::write(
        db_dir.join("version"),
        "table_name(string) table_version(int) \nsubscriber:7\n",
    )
    .expect("writing db_text version table");
    let mut subscriber = String::from(
        "id(int,auto) username(string) domain(string) password(string) \
         ha1(string,null) ha1b(string,null) \n",
    );
    for (i, (user, password)) in users.iter().enumerate() {
        assert!(
            !user.contains(':') && !password.contains(':'),
            "db_text cannot store ':' in {user:?} / {password:?}"
        );
        let _ = writeln!(subscriber, "{}:{user}:{realm}:{password}::", i + 1);
    }
    fs::write(db_dir.join("subscriber"), subscriber).expect("writing db_text subscriber");

    let template_path = lab_dir().join("kamailio.cfg");
    let template = fs::read_to_string(&template_path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", template_path.display()));
    let aliases = match domain {
        Some(domain) => format!("alias=\"@IP@\"\nalias=\"{domain}\""),
        None => "alias=\"@IP@\"".to_owned(),
    };
    let listen_lines: String = listen
        .iter()
        .map(|addr| format!("listen=udp:{addr}\nlisten=tcp:{addr}\n"))
        .collect();
    let cfg = template
        .replace(
            "listen=udp:@IP@:5060\nlisten=tcp:@IP@:5060\n",
            &listen_lines,
        )
        .replace("alias=\"@IP@\"", &aliases)
        .replace("@IP@", realm)
        .replace("@RUN_DIR@", &dir.display().to_string())
        .replace("@DB_DIR@", &db_dir.display().to_string());
    let cfg_path = dir.join("kamailio.cfg");
    fs::write(&cfg_path, cfg).expect("writing kamailio.cfg");
    cfg_path
}

/// Whether kamailio's `tls.so` is installed (`/usr/lib/<triplet>/kamailio/modules/`).
fn has_tls_module() -> bool {
    let Ok(dirs) = fs::read_dir("/usr/lib") else {
        return false;
    };
    dirs.flatten()
        .any(|d| d.path().join("kamailio/modules/tls.so").exists())
}

/// A port free for UDP and TCP on `::1` (asked of the system). Panics, saying so, when `::1`
/// cannot be bound (IPv6 off on this machine).
fn free_ipv6_port() -> u16 {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).unwrap_or_else(|e| {
            panic!("the IPv6 lab needs ::1 on the loopback interface, which cannot be bound: {e}")
        });
        let port = udp.local_addr().expect("a bound socket's address").port();
        if std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on ::1");
}

/// Whether `server` answers one OPTIONS (sent from `[::1]` or `127.0.0.1`) with 200 within 1 s.
fn options_ping(server: SocketAddr) -> bool {
    let local: IpAddr = if server.is_ipv6() {
        Ipv6Addr::LOCALHOST.into()
    } else {
        Ipv4Addr::LOCALHOST.into()
    };
    let Ok(socket) = UdpSocket::bind((local, 0)) else {
        return false;
    };
    let Ok(me) = socket.local_addr() else {
        return false;
    };
    let request = format!(
        "OPTIONS sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKping{port}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:ping@{me}>;tag=ping\r\nTo: <sip:{server}>\r\n\
         Call-ID: ping-{port}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        port = me.port()
    );
    if socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .is_err()
        || socket.send_to(request.as_bytes(), server).is_err()
    {
        return false;
    }
    let mut buf = [0u8; 2048];
    matches!(socket.recv_from(&mut buf), Ok((n, _)) if buf[..n].starts_with(b"SIP/2.0 200"))
}
