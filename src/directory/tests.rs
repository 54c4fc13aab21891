//! Tests of the directory as a whole: loading the fixture files, searching, ranking, caller
//! lookup, history and the personal book.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;

use super::*;
use crate::config;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/directory")
        .join(name)
}

fn entry(name: &str, number: &str, detail: &str, source: Source) -> Entry {
    Entry {
        name: name.to_owned(),
        number: number.to_owned(),
        detail: detail.to_owned(),
        source,
        internal: false,
    }
}

/// A fixed point in time, days after 2023-11-14.
fn at(days: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + days * 86_400)
}

fn everything() -> config::Directory {
    config::Directory {
        personal: Some(fixture("personal.toml")),
        corporate: vec![
            fixture("corporate.csv"),
            fixture("semicolon.csv"),
            fixture("people_v3.vcf"),
            fixture("people_v4.vcf"),
        ],
        extensions: vec![config::Extension {
            number: "200".into(),
            name: "Operator".into(),
        }],
        extensions_file: Some(fixture("extensions.csv")),
        internal_digits: 5,
    }
}

fn find<'a>(directory: &'a Directory, name: &str) -> Vec<&'a Entry> {
    (0..directory.len())
        .map(|i| directory.entry(i))
        .filter(|e| e.name == name)
        .collect()
}

/// The characters of `text` at `indices`.
fn picked(text: &str, indices: &[usize]) -> String {
    let chars: Vec<char> = text.chars().collect();
    indices.iter().map(|&i| chars[i]).collect()
}

#[test]
fn loads_every_kind_of_source() {
    let (directory, warnings) = Directory::load(&everything());
    assert!(warnings.is_empty(), "{warnings:#?}");
    // personal 3, extensions 1 + 2, corporate.csv 4 (one person without phone left out),
    // semicolon 2, v3 3, v4 3.
    assert_eq!(directory.len(), 18);

    let mum = find(&directory, "Mum");
    assert_eq!(mum.len(), 2, "one entry per number");
    assert_eq!(mum[1].detail, "home");
    assert!(mum
        .iter()
        .all(|e| e.source == Source::Personal && !e.internal));

    let reception = find(&directory, "Reception");
    assert_eq!(reception[0].source, Source::Extension);
    assert!(reception[0].internal);
    assert!(find(&directory, "Operator")[0].internal);
    assert_eq!(Source::Corporate.tag(), "corporate");
}

#[test]
fn csv_with_bom_quotes_and_header_variants() {
    let (directory, warnings) = Directory::load(&config::Directory {
        corporate: vec![fixture("corporate.csv"), fixture("semicolon.csv")],
        ..config::Directory::default()
    });
    assert!(warnings.is_empty(), "{warnings:#?}");
    let jose = find(&directory, "José García");
    assert_eq!(jose.len(), 2);
    assert_eq!(jose[0].number, "+34 600 123 456");
    assert_eq!(
        jose[0].detail,
        "mobile · jose.garcia@example.com · Acme, S.L. · Sales"
    );
    assert!(jose[1].detail.starts_with("office · "));
    let aino = find(&directory, "Aino Hämeenlinna");
    assert_eq!(aino.len(), 1);
    assert!(
        aino[0].detail.ends_with("Support \"Tier 2\""),
        "{}",
        aino[0].detail
    );
    assert_eq!(find(&directory, "John \"Johnny\" Smith").len(), 1);
    assert!(
        find(&directory, "Nobody Without").is_empty(),
        "no number, no entry"
    );
    let anna = find(&directory, "Müller; Anna");
    assert_eq!(anna[0].number, "0049 30 1234567");
    assert_eq!(anna[0].detail, "Beispiel GmbH · Einkauf");
    assert_eq!(find(&directory, "Lars Ørsted").len(), 1);
}

#[test]
fn vcards_version_3_and_4() {
    let (directory, warnings) = Directory::load(&config::Directory {
        corporate: vec![fixture("people_v3.vcf"), fixture("people_v4.vcf")],
        ..config::Directory::default()
    });
    assert!(warnings.is_empty(), "{warnings:#?}");
    let pavel = find(&directory, "Павел Пахомов");
    assert_eq!(pavel.len(), 2);
    assert_eq!(pavel[0].number, "+7 912 345-67-89", "folded line joined");
    assert_eq!(
        pavel[0].detail,
        "mobile · pavel@example.ru · ООО Ромашка · Бухгалтерия"
    );
    assert_eq!(pavel[1].detail.split(" · ").next(), Some("work"));
    let mikko = find(&directory, "Virtanen, Mikko");
    assert_eq!(mikko[0].detail, "home · Hämeenlinnan kaupunki");
    let lucja = find(&directory, "Łucja Nowak");
    assert_eq!(lucja.len(), 2);
    assert_eq!(lucja[0].number, "+48-600-700-800");
    assert_eq!(lucja[1].number, "+48-22-555-0000");
    assert_eq!(
        find(&directory, "Conference Room")[0].number,
        "sip:conf@pbx.example.com"
    );
}

#[test]
fn bad_files_warn_with_file_and_line_and_the_rest_loads() {
    let (mut directory, warnings) = Directory::load(&config::Directory {
        personal: Some(fixture("personal.toml")),
        corporate: vec![
            fixture("bad_row.csv"),
            fixture("bad.vcf"),
            fixture("no_columns.csv"),
            fixture("missing.csv"),
            fixture("corporate.csv"),
        ],
        ..config::Directory::default()
    });
    let has = |suffix: &str| {
        let wanted = fixture(suffix).display().to_string();
        warnings.iter().any(|w| w.starts_with(&wanted))
    };
    assert!(has("bad.vcf:4: "), "{warnings:#?}");
    assert!(has("no_columns.csv:1: "), "{warnings:#?}");
    assert!(has("missing.csv: "), "{warnings:#?}");
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    // Bytes that are not UTF-8 make the file Windows-1252, where every byte is a character:
    // the row loads rather than being skipped.
    assert!(
        !find(&directory, "Bad ÿþ Row").is_empty(),
        "read as Windows-1252"
    );
    for name in [
        "Good One",
        "Good Two",
        "Broken Line Person",
        "Second Card",
        "Mum",
    ] {
        assert!(!find(&directory, name).is_empty(), "{name} is loaded");
    }
    assert!(!directory.search("jose garcia", 5).is_empty());
}

fn names(directory: &mut Directory, query: &str) -> Vec<String> {
    directory
        .search(query, 10)
        .into_iter()
        .map(|hit| directory.entry(hit.entry).name.clone())
        .collect()
}

#[test]
fn accents_and_scripts_are_folded() {
    let (mut directory, _) = Directory::load(&everything());
    assert_eq!(names(&mut directory, "jose garcia")[0], "José García");
    assert_eq!(names(&mut directory, "hameen")[0], "Aino Hämeenlinna");
    assert_eq!(names(&mut directory, "пах")[0], "Павел Пахомов");
    assert_eq!(names(&mut directory, "ПАХОМОВ")[0], "Павел Пахомов");
    assert_eq!(names(&mut directory, "lucja")[0], "Łucja Nowak");
    assert_eq!(names(&mut directory, "orsted")[0], "Lars Ørsted");
    assert_eq!(names(&mut directory, "muller")[0], "Müller; Anna");

    let mut latin = Directory::from_entries(vec![
        entry("Pavel Pahomov", "+7 912 000 0000", "", Source::Corporate),
        entry("Paula Hommel", "+49 30 000 0000", "", Source::Corporate),
    ]);
    assert_eq!(names(&mut latin, "pahomov"), ["Pavel Pahomov"]);
}

#[test]
fn numbers_match_by_digits_whatever_the_separators() {
    let (mut directory, _) = Directory::load(&everything());
    assert!(names(&mut directory, "5551").contains(&"John \"Johnny\" Smith".to_owned()));
    assert_eq!(
        names(&mut directory, "555-123-45")[0],
        "John \"Johnny\" Smith"
    );
    assert_eq!(
        names(&mut directory, "+1 (555) 123")[0],
        "John \"Johnny\" Smith"
    );
    assert_eq!(
        names(&mut directory, "smith sales")[0],
        "John \"Johnny\" Smith"
    );
    assert_eq!(names(&mut directory, "conf@pbx")[0], "Conference Room");
}

#[test]
fn highlights_point_at_the_original_characters() {
    let mut directory = Directory::from_entries(vec![entry(
        "José García",
        "+1 (555) 123-4567",
        "mobile · jose@example.com · Straße GmbH",
        Source::Corporate,
    )]);
    let hit = directory.search("garcia", 1).remove(0);
    assert_eq!(picked("José García", &hit.name), "García");
    assert!(hit.number.is_empty() && hit.detail.is_empty());

    let hit = directory.search("5551", 1).remove(0);
    assert_eq!(hit.number, [4, 5, 6, 9]);
    assert_eq!(picked("+1 (555) 123-4567", &hit.number), "5551");

    let hit = directory.search("strasse", 1).remove(0);
    let detail = "mobile · jose@example.com · Straße GmbH";
    assert_eq!(
        picked(detail, &hit.detail),
        "Straße",
        "ß is one character, shown once"
    );
}

#[test]
fn ranking_is_score_then_use_then_source_then_name() {
    let mut directory = Directory::from_entries(vec![
        entry("Anna Corp", "+1 555 0001", "", Source::Corporate),
        entry("Anna History", "+1 555 0002", "", Source::History),
        entry("Anna Personal", "+1 555 0003", "", Source::Personal),
        entry("Anna Extension", "201", "", Source::Extension),
        entry("Hannah", "+1 555 0005", "", Source::Personal),
        entry("Anna Bravo", "+1 555 0006", "", Source::Corporate),
    ]);
    assert_eq!(
        names(&mut directory, "anna"),
        [
            "Anna Personal",
            "Anna Extension",
            "Anna Bravo",
            "Anna Corp",
            "Anna History",
            "Hannah"
        ],
        "equal scores: source, then name; a weaker match (inside a word) comes last"
    );
    directory.record_use("+15550002", at(1));
    assert_eq!(names(&mut directory, "anna")[0], "Anna History");
    directory.record_use("sip:+1-555-0001@pbx", at(2));
    assert_eq!(
        names(&mut directory, "anna")[..2],
        ["Anna Corp", "Anna History"]
    );
    for day in 0..3 {
        directory.record_use("+1 555 0002", at(day));
    }
    assert_eq!(
        names(&mut directory, "anna")[0],
        "Anna History",
        "frequent beats one recent use"
    );
    assert_eq!(
        names(&mut directory, "")[0],
        "Anna History",
        "the empty query ranks by use"
    );
    assert_eq!(directory.search("", 3).len(), 3);
}

#[test]
fn lookup_by_digits_sip_user_and_trailing_digits() {
    let (directory, _) = Directory::load(&everything());
    let name = |number: &str| directory.lookup_number(number).map(|e| e.name.clone());
    assert_eq!(
        name("+15551234567").as_deref(),
        Some("John \"Johnny\" Smith")
    );
    assert_eq!(
        name("sip:+1-555-123-4567@pbx.example.com;user=phone").as_deref(),
        Some("John \"Johnny\" Smith")
    );
    assert_eq!(name("+44 20 7946 0958").as_deref(), Some("Mum"));
    assert_eq!(
        name("0044 20 7946 0958").as_deref(),
        Some("Mum"),
        "same last nine digits"
    );
    assert_eq!(name("201").as_deref(), Some("Reception"));
    assert_eq!(
        name("sip:CONF@pbx.example.com").as_deref(),
        Some("Conference Room")
    );
    assert_eq!(name("+1 999 999 9999"), None);
    assert_eq!(name("anonymous"), None);
}

#[test]
fn history_adds_unknown_numbers_only() {
    let (mut directory, _) = Directory::load(&everything());
    let before = directory.len();
    directory.set_history(vec![
        ("+1 555 123 4567".into(), Some("John".into()), at(1)),
        ("+1 999 000 1111".into(), Some("Courier".into()), at(2)),
        ("+1 999 000 2222".into(), None, at(3)),
        ("+1 999 000 2222".into(), None, at(0)),
    ]);
    assert_eq!(directory.len(), before + 2);
    let courier = directory
        .lookup_number("+19990001111")
        .expect("history entry");
    assert_eq!(
        (courier.name.as_str(), courier.source),
        ("Courier", Source::History)
    );
    assert_eq!(
        directory
            .lookup_number("+19990002222")
            .map(|e| e.name.as_str()),
        Some("")
    );
    assert_eq!(
        names(&mut directory, "")[0],
        "",
        "the latest call ranks first"
    );
    directory.set_history(Vec::new());
    assert_eq!(directory.len(), before);
}

#[test]
fn personal_book_round_trip() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("sub").join("contacts.toml");
    let config = config::Directory {
        personal: Some(path.clone()),
        ..config::Directory::default()
    };
    let (mut directory, warnings) = Directory::load(&config);
    assert!(warnings.is_empty() && directory.is_empty(), "{warnings:?}");

    directory
        .add_personal("Zoë \"the courier\" O'Brien", " +44 (0)7700-900 123 ")
        .expect("added");
    directory
        .add_personal("Reception", "sip:reception@pbx.example.com")
        .expect("added");
    directory
        .add_personal("Reception", "sip:reception@pbx.example.com")
        .expect("adding twice is fine");
    assert_eq!(directory.len(), 2);
    assert_eq!(
        names(&mut directory, "zoe")[0],
        "Zoë \"the courier\" O'Brien"
    );
    assert!(
        !directory.reload_if_changed(),
        "our own write is not a change"
    );

    let (reloaded, warnings) = Directory::load(&config);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(reloaded.len(), 2);
    assert_eq!(reloaded.entry(0).number, "+4407700900123");
    assert_eq!(reloaded.entry(1).number, "sip:reception@pbx.example.com");
    let leftovers = std::fs::read_dir(path.parent().expect("folder"))
        .expect("list")
        .count();
    assert_eq!(leftovers, 1, "no temporary file left behind");

    assert!(matches!(
        directory.add_personal(" ", "123"),
        Err(DirectoryError::InvalidName)
    ));
    assert!(matches!(
        directory.add_personal("X", "hello there"),
        Err(DirectoryError::InvalidNumber(_))
    ));
    let mut without = Directory::from_entries(Vec::new());
    assert!(matches!(
        without.add_personal("X", "123"),
        Err(DirectoryError::NoPersonalBook)
    ));
}

#[test]
fn adding_keeps_the_users_comments() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("contacts.toml");
    std::fs::write(
        &path,
        "# my people\n[[contact]]\nname = \"A\"\nnumbers = [\"1\"]",
    )
    .expect("write");
    let (mut directory, _) = Directory::load(&config::Directory {
        personal: Some(path.clone()),
        ..config::Directory::default()
    });
    directory.add_personal("B", "2").expect("added");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(
        text.starts_with("# my people\n[[contact]]\nname = \"A\""),
        "{text}"
    );
    assert_eq!(directory.len(), 2);

    std::fs::write(&path, "[[contact]\n").expect("write");
    assert!(directory.reload_if_changed());
    assert_eq!(directory.take_warnings().len(), 1);
    assert!(matches!(
        directory.add_personal("C", "3"),
        Err(DirectoryError::BrokenBook { line: 1, .. })
    ));
}

#[test]
fn reload_reads_changed_files_only() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("people.csv");
    std::fs::write(&path, "Name,Phone\nAlpha,100200300\n").expect("write");
    let (mut directory, _) = Directory::load(&config::Directory {
        corporate: vec![path.clone()],
        ..config::Directory::default()
    });
    assert_eq!(directory.len(), 1);
    assert!(!directory.reload_if_changed());
    assert_eq!(names(&mut directory, "bra"), Vec::<String>::new());
    std::fs::write(&path, "Name,Phone\nAlpha,100200300\nBravo,100200301\n").expect("write");
    assert!(directory.reload_if_changed());
    assert_eq!(names(&mut directory, "bra"), ["Bravo"]);
    assert!(!directory.reload_if_changed());
    std::fs::remove_file(&path).expect("remove");
    assert!(directory.reload_if_changed());
    assert!(directory.is_empty());
    assert_eq!(
        directory.take_warnings().len(),
        1,
        "the missing file is reported"
    );
}

/// One step of typing in the picker.
#[derive(Debug, Clone)]
enum Key {
    Type(char),
    Backspace,
    Clear,
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        6 => prop::sample::select(vec!['a', 'b', 'e', 'é', 'п', ' ', '1', '5', '-', '@'])
            .prop_map(Key::Type),
        3 => Just(Key::Backspace),
        1 => Just(Key::Clear),
    ]
}

fn random_entry() -> impl Strategy<Value = Entry> {
    (
        "[abeéE пП]{0,8}",
        "[+]?[0-9 ]{1,6}",
        "[abe@. ]{0,6}",
        prop::sample::select(vec![
            Source::Personal,
            Source::Corporate,
            Source::Extension,
            Source::History,
        ]),
    )
        .prop_map(|(name, number, detail, source)| entry(&name, &number, &detail, source))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Typing, deleting and clearing gives, at every step, exactly what a fresh directory
    /// finds for the same query (hits, scores, order and highlights).
    #[test]
    fn incremental_search_equals_a_fresh_search(
        entries in prop::collection::vec(random_entry(), 0..40),
        keys in prop::collection::vec(key(), 1..30),
        uses in prop::collection::vec((0usize..40, 0u64..30), 0..5),
    ) {
        let mut directory = Directory::from_entries(entries.clone());
        let mut fresh_uses = Vec::new();
        for (i, day) in uses {
            if let Some(e) = entries.get(i) {
                directory.record_use(&e.number, at(day));
                fresh_uses.push((e.number.clone(), at(day)));
            }
        }
        let mut query = String::new();
        for key in keys {
            match key {
                Key::Type(c) => query.push(c),
                Key::Backspace => { query.pop(); }
                Key::Clear => query.clear(),
            }
            let mut fresh = Directory::from_entries(entries.clone());
            for (number, time) in &fresh_uses {
                fresh.record_use(number, *time);
            }
            prop_assert_eq!(directory.search(&query, 7), fresh.search(&query, 7), "query {:?}", query);
        }
    }
}

/// `text` as UTF-16 with its byte order mark, little or big endian.
fn utf16_file(text: &str, big_endian: bool) -> Vec<u8> {
    let mut bytes = if big_endian {
        vec![0xfe, 0xff]
    } else {
        vec![0xff, 0xfe]
    };
    for unit in text.encode_utf16() {
        if big_endian {
            bytes.extend_from_slice(&unit.to_be_bytes());
        } else {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
    }
    bytes
}

#[test]
fn files_from_excel_and_phones_load_in_windows_1252_and_utf16() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // Excel's "CSV (comma delimited)" on a Western Windows: Windows-1252, `;` in Europe, CRLF.
    let excel = dir.path().join("excel.csv");
    std::fs::write(
        &excel,
        b"Name;Phone;Company\r\nJos\xe9 Garc\xeda;+34 91 123 45 67;Caf\xe9 Cr\xe8me\r\n\
          Fran\xe7ois M\xfcller;+33 1 23 45 67 89;\r\nPlain Name;201;\r\n",
    )
    .expect("writing the CSV");
    // Excel's "Unicode text" and phones' exports: UTF-16 with a byte order mark.
    let csv = "Name,Phone\r\nПавел Пахомов,+7 912 345-67-89\r\nŁucja Nowak,+48 600 700 800\r\n";
    let csv_le = dir.path().join("utf16le.csv");
    std::fs::write(&csv_le, utf16_file(csv, false)).expect("writing the CSV");
    let vcard = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Søren Ærø\r\nTEL;TYPE=CELL:+45 20 30 40 50\r\n\
                 END:VCARD\r\n";
    let vcf_be = dir.path().join("utf16be.vcf");
    std::fs::write(&vcf_be, utf16_file(vcard, true)).expect("writing the vCard");
    let vcf_le = dir.path().join("utf16le.vcf");
    std::fs::write(
        &vcf_le,
        utf16_file(&vcard.replace("Søren Ærø", "Zoë Chloé"), false),
    )
    .expect("writing the vCard");
    let vcf_1252 = dir.path().join("cp1252.vcf");
    std::fs::write(
        &vcf_1252,
        b"BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Ang\xe9lique Dupr\xe9\r\nTEL:+33 6 11 22 33 44\r\n\
          END:VCARD\r\n",
    )
    .expect("writing the vCard");

    let (mut directory, warnings) = Directory::load(&config::Directory {
        corporate: vec![excel, csv_le, vcf_be, vcf_le, vcf_1252],
        ..config::Directory::default()
    });
    assert!(warnings.is_empty(), "{warnings:#?}");
    for (name, number) in [
        ("José García", "+34 91 123 45 67"),
        ("François Müller", "+33 1 23 45 67 89"),
        ("Plain Name", "201"),
        ("Павел Пахомов", "+7 912 345-67-89"),
        ("Łucja Nowak", "+48 600 700 800"),
        ("Søren Ærø", "+45 20 30 40 50"),
        ("Zoë Chloé", "+45 20 30 40 50"),
        ("Angélique Dupré", "+33 6 11 22 33 44"),
    ] {
        let found = find(&directory, name);
        assert_eq!(found.len(), 1, "{name} loaded once");
        assert_eq!(found[0].number, number);
    }
    assert_eq!(find(&directory, "José García")[0].detail, "Café Crème");
    assert_eq!(
        names(&mut directory, "francois muller")[0],
        "François Müller"
    );
}

#[test]
fn a_utf16_file_cut_mid_character_loads_what_it_can_and_says_so() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("cut.csv");
    let mut bytes = utf16_file("Name,Phone\r\nÅsa Berg,+46 8 123 456\r\n", false);
    bytes.push(0x41);
    std::fs::write(&path, bytes).expect("writing the CSV");
    let (directory, warnings) = Directory::load(&config::Directory {
        corporate: vec![path.clone()],
        ..config::Directory::default()
    });
    assert_eq!(find(&directory, "Åsa Berg").len(), 1);
    assert_eq!(
        warnings,
        [format!(
            "{}: not valid UTF-16LE text; unreadable characters were replaced",
            path.display()
        )]
    );
}
