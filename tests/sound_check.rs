//! The sound check in headless mode, through switchboard's file audio backend: the level
//! meter's `level` events rise when the microphone file starts talking, the echo plays the
//! microphone back in the headset file one second later, `use-device` writes the chosen
//! device into the configuration file with its comments kept and switches to it at once (the
//! echo going on across the switch; a device that cannot open leaves the old one in use), and
//! `list-devices` answers with one `device_list` event while the run loop goes on; on the
//! screen (tmux), `v` opens the sound check with the live level and the echo switch. On a
//! private PulseAudio, through ALSA's `pulse` plugin and through PulseAudio's own protocol
//! (`[audio] host = "pulse"`): the headset moves between null sinks live, the test tone is
//! heard at the chosen sink's monitor, and the level meter hears a tone played into the
//! microphone's sink.

mod common;

use std::path::Path;
use std::time::Duration;

use common::signal::read_wav;
use common::{secs, Net, Switchboard, SwitchboardConfig, TmuxScreen};

/// Writes a 48 kHz mono WAV: `silent` seconds of silence, then `tone` seconds of `hz`.
fn wav(path: &Path, silent: f64, tone: f64, hz: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("creating a WAV");
    let quiet = (silent * 48_000.0) as usize;
    let loud = (tone * 48_000.0) as usize;
    for i in 0..quiet + loud {
        let s = if i < quiet {
            0.0
        } else {
            0.3 * (std::f64::consts::TAU * hz * i as f64 / 48_000.0).sin()
        };
        w.write_sample((s * f64::from(i16::MAX)) as i16)
            .expect("writing a WAV");
    }
    w.finalize().expect("finishing a WAV");
}

fn start(net: &Net, file_in: &Path, file_out: &Path) -> Switchboard {
    let cfg = SwitchboardConfig::peer_to_peer(net).with_audio(&format!(
        "backend = \"file\"\nfile_loop = false\nfile_in = \"{}\"\nfile_out = \"{}\"\n",
        file_in.display(),
        file_out.display()
    ));
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "started");
    sb
}

#[test]
fn level_events_rise_when_the_microphone_talks() {
    let net = Net::for_test("sound_check::level");
    let dir = tempfile::tempdir().expect("tempdir");
    let file_in = dir.path().join("in.wav");
    wav(&file_in, 3.0, 3.0, 440.0);
    let mut sb = start(&net, &file_in, &dir.path().join("out.wav"));
    sb.send("level on");
    let dbfs = |e: &serde_json::Value| e["dbfs"].as_f64().unwrap_or(0.0);
    let quiet = sb.wait_event(secs(10), |e| e["event"] == "level");
    assert!(dbfs(&quiet) < -90.0, "silence first: {quiet}");
    let loud = sb.wait_event(secs(10), |e| e["event"] == "level" && dbfs(e) > -20.0);
    // 0.3 of full scale, a sine: −13.5 dBFS.
    assert!(
        (dbfs(&loud) - -13.5).abs() < 1.5,
        "the tone's level: {loud}"
    );
    sb.send("level off");
    // Readings already on their way may still arrive; after a settling second, none.
    let levels =
        |sb: &mut Switchboard| sb.events().iter().filter(|e| e["event"] == "level").count();
    std::thread::sleep(Duration::from_secs(1));
    let settled = levels(&mut sb);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(levels(&mut sb), settled, "the meter stopped");
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn the_echo_plays_the_microphone_back_one_second_later() {
    let net = Net::for_test("sound_check::echo");
    let dir = tempfile::tempdir().expect("tempdir");
    let file_in = dir.path().join("in.wav");
    let file_out = dir.path().join("out.wav");
    // Two seconds of tone from the first frame, then silence.
    wav(&file_in, 0.0, 2.0, 700.0);
    let mut sb = start(&net, &file_in, &file_out);
    sb.send("echo on");
    // Wait until the headset file holds 4 s (the tone's echo ends at 3 s), bounded.
    let mut waited = 0;
    while common::audio::recorded_samples(&file_out) < 5 * 48_000 && waited < 200 {
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    assert!(sb.quit_and_wait(secs(10)).success());
    let (out, rate) = read_wav(&file_out);
    assert_eq!(rate, 48_000);
    let frame = 960;
    let loud: Vec<usize> = out
        .chunks(frame)
        .enumerate()
        .filter(|(_, c)| c.iter().map(|v| v * v).sum::<f32>() / frame as f32 > 0.01)
        .map(|(i, _)| i)
        .collect();
    let first = *loud.first().expect("the echo is heard");
    let last = *loud.last().expect("the echo is heard");
    assert!(
        first >= 50,
        "nothing comes back before one second: frame {first}"
    );
    // The microphone's tone ends at frame 100 (2 s); its echo one second later.
    assert!(
        (149..=151).contains(&last),
        "the echo ends at 3 s: frame {last}"
    );
    let tone = &out[last * frame - 4800..last * frame];
    assert!(
        common::audio::tone_level(tone, rate, 700.0) > 0.2,
        "it is the microphone's tone"
    );
}

#[test]
fn use_device_writes_the_config_file_keeping_its_comments() {
    let net = Net::for_test("sound_check::use_device");
    let cfg = SwitchboardConfig::peer_to_peer(&net);
    let commented = format!("# my desk's phone\n{}", cfg.to_toml());
    let mut sb = Switchboard::start(&commented);
    sb.wait_for(secs(10), "started");
    sb.send("use-device out USB Headset Stereo");
    let chosen = sb.wait_for(secs(10), "device_chosen");
    assert_eq!(chosen["role"], "output");
    assert_eq!(chosen["device"], "USB Headset Stereo");
    let text = std::fs::read_to_string(sb.config_path()).expect("config");
    assert!(text.starts_with("# my desk's phone\n"), "{text}");
    assert!(text.contains("output = \"USB Headset Stereo\""), "{text}");
    sb.send("use-device sideways x");
    let error = sb.wait_for(secs(10), "error");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("use-device"),
        "{error}"
    );
    assert!(sb.quit_and_wait(secs(10)).success());
}

/// Waits (at most 20 s) until `path` holds `seconds` of 48 kHz audio.
fn wait_recorded(path: &Path, seconds: usize) {
    let mut waited = 0;
    while common::audio::recorded_samples(path) < seconds * 48_000 && waited < 200 {
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
}

#[test]
fn use_device_switches_the_headset_now_and_keeps_it_when_the_new_one_fails() {
    let net = Net::for_test("sound_check::live_switch");
    let dir = tempfile::tempdir().expect("tempdir");
    let file_in = dir.path().join("in.wav");
    let first = dir.path().join("first.wav");
    let second = dir.path().join("second.wav");
    // A tone from the first frame for 20 s: its echo is heard from the second second on.
    wav(&file_in, 0.0, 20.0, 700.0);
    let mut sb = start(&net, &file_in, &first);
    sb.send("echo on");
    wait_recorded(&first, 2);

    let nowhere = dir.path().join("no such dir").join("x.wav");
    sb.send(&format!("use-device out {}", nowhere.display()));
    let refused = sb.wait_event(secs(10), |e| {
        e["event"] == "audio"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("cannot use"))
    });
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("x.wav") && message.contains("the headset stays"),
        "{refused}"
    );
    let before = common::audio::recorded_samples(&first);
    wait_recorded(&first, before / 48_000 + 1);
    assert!(
        common::audio::recorded_samples(&first) > before,
        "the old headset file still records after the failed switch"
    );

    sb.send(&format!("use-device out {}", second.display()));
    let wanted = second.display().to_string();
    let devices = sb.wait_event(secs(10), |e| {
        e["event"] == "devices" && e["output"] == *wanted
    });
    assert_eq!(
        devices["input"], "in.wav",
        "the microphone is untouched: {devices}"
    );
    wait_recorded(&second, 2);
    assert!(sb.quit_and_wait(secs(10)).success());

    let (out, rate) = read_wav(&second);
    assert!(out.len() >= 2 * 48_000, "{} samples", out.len());
    // The echo goes on from the second file's first frames: no restart, no second of silence.
    assert!(
        common::audio::tone_level(&out[..4800], rate, 700.0) > 0.2,
        "the echo is in the new headset file from its start"
    );
    let (old, _) = read_wav(&first);
    let tail = &old[old.len() - 4800..];
    assert!(
        common::audio::tone_level(tail, rate, 700.0) > 0.2,
        "the old file is finished with the echo up to the switch"
    );
}

/// Moves `sb`'s headset to the sink `to` live (`use-device out`), plays the test tone and
/// quits; the 1 kHz level heard at the monitors of sinks `one` and `two` (recorded into
/// `dir`), in that order.
fn tone_after_switch(
    sb: &mut Switchboard,
    server: &common::pulse::SoundServer,
    dir: &Path,
    to: &str,
) -> (f64, f64) {
    sb.send(&format!("use-device out {to}"));
    let switched = sb.wait_event(secs(10), |e| {
        (e["event"] == "devices" && e["output"] == to)
            || (e["event"] == "audio"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("cannot use")))
    });
    assert_eq!(switched["event"], "devices", "{switched}");
    let (one, two) = (dir.join("one.raw"), dir.join("two.raw"));
    let mut rec_one = record(server, "one.monitor", &one);
    let mut rec_two = record(server, "two.monitor", &two);
    std::thread::sleep(Duration::from_millis(500));
    sb.send("tone");
    std::thread::sleep(Duration::from_millis(2500));
    for rec in [&mut rec_one, &mut rec_two] {
        rec.signal("INT");
        let _ = rec.wait_timeout(Duration::from_secs(5));
    }
    assert!(sb.quit_and_wait(secs(10)).success());
    let level = |path: &Path| {
        let x = raw_samples(path);
        x.chunks(4800)
            .map(|c| common::audio::tone_level(c, 48_000, 1000.0))
            .fold(0.0, f64::max)
    };
    (level(&one), level(&two))
}

/// Records `source` of `server` as raw 48 kHz mono 16-bit into `path` until stopped.
fn record(server: &common::pulse::SoundServer, source: &str, path: &Path) -> common::process::Peer {
    let mut cmd = server.tool("parec");
    cmd.args([
        "-d",
        source,
        "--raw",
        "--format=s16le",
        "--rate=48000",
        "--channels=1",
    ])
    .arg(path)
    .stdin(std::process::Stdio::null());
    common::process::Peer::spawn("parec", &mut cmd, Vec::new())
}

/// Raw 16-bit samples as −1..1.
fn raw_samples(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
        .collect()
}

/// A private PulseAudio's sinks for the live-switch tests: a microphone's and two headsets'.
const MIC_AND_TWO_HEADSETS: &[&str] = &[
    "module-null-sink sink_name=mic rate=48000 channels=1",
    "module-null-sink sink_name=one rate=48000 channels=1",
    "module-null-sink sink_name=two rate=48000 channels=1",
];

/// cpal on a private PulseAudio: two ALSA devices, each a null sink; `use-device out` moves the
/// headset from the first to the second while switchboard runs, and the test tone played
/// after it is heard on the second sink only.
#[test]
fn use_device_moves_the_headset_between_pulse_sinks_live() {
    let net = Net::for_test("sound_check::pulse_switch");
    let dir = common::run_dir("pulse-switch");
    let server = common::pulse::SoundServer::start(dir.path(), MIC_AND_TWO_HEADSETS);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    std::fs::write(
        home.join(".asoundrc"),
        "pcm.desk_one { type pulse device \"one\" hint { show on description \"Desk one\" } }\n\
         pcm.desk_two { type pulse device \"two\" hint { show on description \"Desk two\" } }\n",
    )
    .expect(".asoundrc");
    let mut env = server.client_env("mic.monitor", "one");
    env.push(("HOME".into(), home.display().to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cfg = SwitchboardConfig::peer_to_peer(&net).with_audio(
        "backend = \"cpal\"\nhost = \"alsa\"\ninput = \"pulse\"\noutput = \"desk_one\"\n",
    );
    let mut sb = Switchboard::start_with_env(&cfg.to_toml(), &env);
    sb.wait_for(secs(10), "started");
    let devices = sb.wait_for(secs(5), "devices");
    assert_eq!(devices["output"], "desk_one", "{devices}");

    let (heard_one, heard_two) = tone_after_switch(&mut sb, &server, dir.path(), "desk_two");
    assert!(
        heard_two > 0.1,
        "the tone reaches the new headset sink: {heard_two}"
    );
    assert!(
        heard_one < 0.01,
        "nothing reaches the old one after the switch: {heard_one}"
    );
}

/// cpal's PulseAudio host, talking to a private PulseAudio directly: `list-devices` lists its
/// sinks and sources by their PulseAudio names; the level meter hears a tone played into the
/// microphone's sink; `use-device out two` moves the headset live and the test tone is
/// heard at the second sink's monitor only.
#[test]
fn the_native_pulse_host_hears_the_microphone_and_plays_the_tone_where_chosen() {
    let net = Net::for_test("sound_check::pulse_native");
    let dir = common::run_dir("pulse-native");
    let server = common::pulse::SoundServer::start(dir.path(), MIC_AND_TWO_HEADSETS);
    let env = server.server_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cfg = SwitchboardConfig::peer_to_peer(&net).with_audio(
        "backend = \"cpal\"\nhost = \"pulse\"\ninput = \"mic.monitor\"\noutput = \"one\"\n",
    );
    let mut sb = Switchboard::start_with_env(&cfg.to_toml(), &env);
    sb.wait_for(secs(10), "started");
    let devices = sb.wait_for(secs(5), "devices");
    assert_eq!(
        (&devices["input"], &devices["output"]),
        (&"mic.monitor".into(), &"one".into()),
        "{devices}"
    );
    sb.send("list-devices");
    let list = sb.wait_for(secs(20), "device_list");
    let ids: Vec<&str> = list["devices"]
        .as_array()
        .expect("a devices array")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    for id in ["pulseaudio:one", "pulseaudio:two", "pulseaudio:mic.monitor"] {
        assert!(ids.contains(&id), "{id} listed: {list}");
    }

    // The microphone: a tone played into its sink reaches the level meter.
    sb.send("level on");
    let tone = dir.path().join("tone.wav");
    wav(&tone, 0.0, 3.0, 440.0);
    let mut play = server.tool("paplay");
    play.args(["-d", "mic"]).arg(&tone);
    let mut player = common::process::Peer::spawn("paplay", &mut play, Vec::new());
    let loud = sb.wait_event(secs(10), |e| {
        e["event"] == "level" && e["dbfs"].as_f64().is_some_and(|d| d > -20.0)
    });
    assert!(loud["dbfs"].as_f64().is_some_and(|d| d < 0.0), "{loud}");
    let _ = player.wait_timeout(Duration::from_secs(5));
    sb.send("level off");

    // The headset: chosen live, the tone is heard there and not on the old sink.
    let (heard_one, heard_two) = tone_after_switch(&mut sb, &server, dir.path(), "two");
    assert!(heard_two > 0.1, "the tone reaches sink two: {heard_two}");
    assert!(heard_one < 0.01, "nothing reaches sink one: {heard_one}");
}

#[test]
fn list_devices_answers_with_one_event_off_the_run_loop() {
    let net = Net::for_test("sound_check::list_devices");
    let cfg = SwitchboardConfig::peer_to_peer(&net);
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "started");
    sb.send("list-devices");
    sb.send("stats");
    sb.wait_for(secs(10), "stats");
    let list = sb.wait_for(secs(20), "device_list");
    // Without a sound card cpal may list nothing or fail; either is one well-formed event.
    let devices = list["devices"].as_array().expect("a devices array");
    if devices.is_empty() {
        assert!(
            list["error"].is_string() || list.get("error").is_none(),
            "{list}"
        );
    }
    for d in devices {
        assert!(d["name"].as_str().is_some_and(|n| !n.is_empty()), "{d}");
        assert!(d["input"].is_boolean() && d["output"].is_boolean(), "{d}");
        assert!(d["default"].is_boolean(), "{d}");
    }
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn the_screen_shows_the_level_and_switches_the_echo() {
    let net = Net::for_test("sound_check::screen");
    let dir = tempfile::tempdir().expect("tempdir");
    let file_in = dir.path().join("in.wav");
    wav(&file_in, 0.0, 4.0, 440.0);
    let cfg = SwitchboardConfig::peer_to_peer(&net).with_audio(&format!(
        "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\n",
        file_in.display()
    ));
    let screen = TmuxScreen::start(&cfg.to_toml(), 100, 30);
    screen.wait_for("Line 1", secs(10));
    screen.keys(&["v"]);
    screen.wait_for("Sound check", secs(5));
    // The tone at 0.3 of full scale reads −13.5 dBFS: the bar shows −13 or −14.
    let shown = screen.wait_for(" dBFS", secs(10));
    assert!(
        shown.contains("-13 dBFS") || shown.contains("-14 dBFS"),
        "{shown}"
    );
    screen.keys(&["e"]);
    screen.wait_for("echo on", secs(5));
    screen.keys(&["Escape"]);
    let mut closed = false;
    for _ in 0..50 {
        if !screen.capture().contains("Sound check") {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(closed, "Esc closes the sound check: {}", screen.capture());
    screen.keys(&["q"]);
    assert!(screen.wait_exit(secs(10)), "{}", screen.log_tail(20));
}
