//! Splitter tests: exact spans (sliced back out of the text), lines and columns.

use super::*;

fn split_all(text: &str) -> Vec<Item> {
    split(text, 0..text.len(), &LineIndex::new(text)).expect("split")
}

fn stmts(text: &str) -> Vec<Statement> {
    split_all(text)
        .into_iter()
        .filter_map(|i| match i {
            Item::Statement(s) => Some(s),
            Item::MetaCommand(_) => None,
        })
        .collect()
}

/// Each item as its text in the file, meta-commands prefixed with `META `.
fn pieces(text: &str) -> Vec<String> {
    split_all(text)
        .iter()
        .map(|i| match i {
            Item::Statement(s) => text[s.span.clone()].to_string(),
            Item::MetaCommand(m) => {
                assert_eq!(m.text, text[m.span.clone()]);
                format!("META {}", m.text)
            }
        })
        .collect()
}

fn assert_clean(text: &str) {
    for s in stmts(text) {
        assert!(
            s.syntax_error.is_none(),
            "{:?} in {:?}",
            s.syntax_error,
            &text[s.span.clone()]
        );
    }
}

#[test]
fn simple_statements_spans_lines_cols() {
    let text =
        "-- header\nCREATE TABLE t (id int);\n\n  /* c */ INSERT INTO t VALUES (1);  \nSELECT 1";
    let s = stmts(text);
    assert_eq!(s.len(), 3);
    assert_eq!(&text[s[0].span.clone()], "CREATE TABLE t (id int);");
    assert_eq!((s[0].line, s[0].col, s[0].terminated), (2, 1, true));
    assert_eq!(&text[s[1].span.clone()], "INSERT INTO t VALUES (1);");
    assert_eq!((s[1].line, s[1].col), (4, 11));
    assert_eq!(&text[s[2].span.clone()], "SELECT 1");
    assert_eq!((s[2].line, s[2].col, s[2].terminated), (5, 1, false));
    assert!(s
        .iter()
        .all(|s| s.ast.is_some() && s.syntax_error.is_none()));
    assert_eq!(
        statement_keyword(s[0].ast.as_ref().unwrap()),
        "CREATE TABLE"
    );
    assert_eq!(statement_keyword(s[1].ast.as_ref().unwrap()), "INSERT");
}

#[test]
fn last_statement_without_semicolon_excludes_trailing_comment() {
    let text = "SELECT 1;\nSELECT 2 -- trailing\n/* end */\n";
    assert_eq!(pieces(text), ["SELECT 1;", "SELECT 2"]);
    assert!(!stmts(text)[1].terminated);
}

#[test]
fn empty_statements_and_comment_only() {
    assert_eq!(pieces(";;\n ; SELECT 1;;"), ["SELECT 1;"]);
    assert!(split_all("-- only a comment\n/* and /* nested */ */\n  \n").is_empty());
    assert!(split_all("").is_empty());
}

#[test]
fn dollar_quoted_bodies_with_semicolons_and_nested_tags() {
    let text = "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $body$\n\
                BEGIN\n  PERFORM $x$ ; $$ ; $x$;\n  EXECUTE $$SELECT 1; $y$;$$;\n  RETURN NEW;\nEND;\n$body$;\n\
                SELECT $1, $$a;b$$, $q$'$q$;";
    let p = pieces(text);
    assert_eq!(p.len(), 2);
    assert!(p[0].starts_with("CREATE FUNCTION") && p[0].ends_with("$body$;"));
    assert_eq!(p[1], "SELECT $1, $$a;b$$, $q$'$q$;");
    assert_eq!(stmts(text)[1].line, 8);
    // `$` inside an identifier does not open a dollar quote.
    assert_eq!(
        pieces("SELECT a$b$c; SELECT 2;"),
        ["SELECT a$b$c;", "SELECT 2;"]
    );
}

#[test]
fn nested_block_comments() {
    let text = "SELECT /* a ; /* b ; */ still ; */ 1; /* x */ SELECT 2;";
    assert_eq!(
        pieces(text),
        ["SELECT /* a ; /* b ; */ still ; */ 1;", "SELECT 2;"]
    );
    assert_clean(text);
}

#[test]
fn strings_and_identifiers_with_semicolons() {
    let text = "SELECT 'a;b''c;'; SELECT E'x\\';y'; SELECT \"we;ird\"\"x\" FROM t; SELECT U&'d;' , B'01', X'ff';";
    assert_eq!(
        pieces(text),
        [
            "SELECT 'a;b''c;';",
            "SELECT E'x\\';y';",
            "SELECT \"we;ird\"\"x\" FROM t;",
            "SELECT U&'d;' , B'01', X'ff';"
        ]
    );
    assert_clean(text);
    // A backslash in a standard string is an ordinary character.
    assert_eq!(
        pieces("SELECT 'a\\'; SELECT 2;"),
        ["SELECT 'a\\';", "SELECT 2;"]
    );
    // psql does not continue an E'' string on the next line (the server would, with
    // backslash escapes), so this `;` ends the statement, as psql 15 does — and the
    // server then rejects the statement.
    let text = "SELECT E'a'\n  'b\\'; SELECT 2;";
    assert_eq!(pieces(text), ["SELECT E'a'\n  'b\\';", "SELECT 2;"]);
    assert!(stmts(text)[0].syntax_error.is_some());
}

#[test]
fn parenthesised_semicolons_rule() {
    let text = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));\nSELECT 1;";
    let p = pieces(text);
    assert_eq!(p.len(), 2);
    assert!(p[0].ends_with("(2));"));
    assert_clean(text);
    assert_eq!(
        statement_keyword(stmts(text)[0].ast.as_ref().unwrap()),
        "CREATE RULE"
    );
}

#[test]
fn begin_atomic_bodies() {
    let text = "CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql\n\
                BEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END;\n  SELECT a;\nEND;\n\
                CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END;\n\
                BEGIN;\nCOMMIT;";
    let p = pieces(text);
    assert_eq!(p.len(), 4, "{p:#?}");
    assert!(p[0].ends_with("SELECT a;\nEND;"));
    assert_eq!(
        p[1],
        "CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END;"
    );
    assert_eq!(p[2], "BEGIN;");
    assert_clean(text);
}

#[test]
fn crlf_line_endings() {
    let text = "SELECT 1;\r\n\r\n  SELECT\r\n 'x';\r\n\\echo hi\r\nSELECT 3\r\n";
    let items = split_all(text);
    assert_eq!(
        pieces(text),
        ["SELECT 1;", "SELECT\r\n 'x';", "META \\echo hi", "SELECT 3"]
    );
    let Item::Statement(s) = &items[1] else {
        panic!()
    };
    assert_eq!((s.line, s.col), (3, 3));
    let Item::MetaCommand(m) = &items[2] else {
        panic!()
    };
    assert_eq!((m.line, m.col), (5, 1));
    let Item::Statement(s) = &items[3] else {
        panic!()
    };
    assert_eq!((s.line, s.col), (6, 1));
    assert_clean(text);
}

#[test]
fn non_ascii_columns_count_characters() {
    let text = "SELECT 'ü€'; SELECT 'ß';\n/* ñ */ SELECT 2;";
    let s = stmts(text);
    assert_eq!(&text[s[1].span.clone()], "SELECT 'ß';");
    assert_eq!((s[1].line, s[1].col), (1, 14));
    assert_eq!((s[2].line, s[2].col), (2, 9));
}

#[test]
fn copy_from_stdin_data_is_skipped() {
    let text = "COPY public.t (a, b) FROM stdin;\n1\t'x;y'\n2\t\\\\N; \"q\n\\.\nSELECT 1;\n";
    let s = stmts(text);
    assert_eq!(s.len(), 2);
    assert_eq!(&text[s[0].span.clone()], "COPY public.t (a, b) FROM stdin;");
    let data = s[0].copy_data.clone().expect("copy data");
    assert_eq!(&text[data], "1\t'x;y'\n2\t\\\\N; \"q\n");
    assert_eq!(&text[s[1].span.clone()], "SELECT 1;");
    assert_eq!(s[1].line, 5);
}

#[test]
fn copy_from_stdin_variants() {
    // Two blocks in a row as pg_dump writes them, CRLF terminator, options.
    let text = "COPY a (x) FROM stdin;\n1\n\\.\n\nCOPY b FROM STDIN WITH (FORMAT csv);\r\n\"a\"\"\",';'\r\n\\.\r\n\nCOPY c TO STDOUT;\nCOPY d FROM stdin;\nno end\n";
    let s = stmts(text);
    assert_eq!(s.len(), 4);
    assert_eq!(&text[s[0].copy_data.clone().unwrap()], "1\n");
    assert_eq!(
        &text[s[1].span.clone()],
        "COPY b FROM STDIN WITH (FORMAT csv);"
    );
    assert_eq!(&text[s[1].copy_data.clone().unwrap()], "\"a\"\"\",';'\r\n");
    assert_eq!(&text[s[2].span.clone()], "COPY c TO STDOUT;");
    assert!(s[2].copy_data.is_none());
    assert_eq!(&text[s[3].copy_data.clone().unwrap()], "no end\n");
    // Empty data, and a `\.` without a final newline.
    let text = "COPY a FROM stdin;\n\\.";
    let s = stmts(text);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].copy_data, Some(19..19));
}

#[test]
fn meta_commands() {
    let text = "\\set ON_ERROR_STOP on\nSELECT '\\not meta;';\n\\i other.sql\nSELECT 1 \\gset\n\\restrict abc123\n  \\connect db";
    assert_eq!(
        pieces(text),
        [
            "META \\set ON_ERROR_STOP on",
            "SELECT '\\not meta;';",
            "META \\i other.sql",
            "SELECT 1",
            "META \\gset",
            "META \\restrict abc123",
            "META \\connect db"
        ]
    );
    let items = split_all(text);
    let Item::Statement(s) = &items[3] else {
        panic!()
    };
    assert!(!s.terminated && s.ast.is_some());
    let Item::MetaCommand(m) = &items[6] else {
        panic!()
    };
    assert_eq!((m.line, m.col), (6, 3));
    // A backslash inside a comment or dollar quote is not a meta-command either.
    assert_eq!(pieces("-- \\echo no\nSELECT $$\\x$$;"), ["SELECT $$\\x$$;"]);
}

#[test]
fn syntax_error_position() {
    let text = "-- 1\n-- 2\nCREATE TABLE a (id int);\n\n-- 5\n\n\nALTER TABLE a ADD COLUMN b intt DEFAULT ,;\nSELECT 1;\n";
    let s = stmts(text);
    assert_eq!(s.len(), 3);
    let err = s[1].syntax_error.clone().expect("syntax error");
    assert_eq!(err.message, "syntax error at or near \",\"");
    assert_eq!(&text[err.offset..err.offset + 1], ",");
    let lines = LineIndex::new(text);
    assert_eq!(lines.line_col(text, err.offset), (8, 41));
    assert!(s[1].ast.is_none());
    assert!(
        s[2].syntax_error.is_none(),
        "splitting continues after an error"
    );
    // Non-ASCII before the error: the position is still exact.
    let text = "SELECT 'ÄÖÜ€' FROMM t;";
    let err = stmts(text)[0].syntax_error.clone().unwrap();
    assert_eq!(&text[err.offset..], "t;");
}

#[test]
fn unterminated_constructs() {
    let cases = [
        (
            "SELECT 1;\nSELECT $body$ x;",
            17,
            "unterminated dollar-quoted string $body$ opened here (line 2, column 8)",
        ),
        (
            "SELECT 'abc;",
            7,
            "unterminated quoted string opened here (line 1, column 8)",
        ),
        (
            "SELECT E'ab\\';",
            7,
            "unterminated E'…' string opened here (line 1, column 8)",
        ),
        (
            "SELECT \"abc;",
            7,
            "unterminated quoted identifier opened here (line 1, column 8)",
        ),
        (
            "SELECT /* /* */ 1;",
            7,
            "unterminated /* comment opened here (line 1, column 8)",
        ),
    ];
    for (text, offset, message) in cases {
        let err = split(text, 0..text.len(), &LineIndex::new(text)).unwrap_err();
        assert_eq!(
            (err.offset, err.message.as_str()),
            (offset, message),
            "{text}"
        );
    }
}

#[test]
fn sub_range_offsets_are_file_relative() {
    let text = "-- migrate:up\nSELECT 1;\n-- migrate:down\nDROP TABLE t;\n";
    let start = text.find("-- migrate:down").unwrap();
    let items = split(text, start..text.len(), &LineIndex::new(text)).unwrap();
    let Item::Statement(s) = &items[0] else {
        panic!()
    };
    assert_eq!(&text[s.span.clone()], "DROP TABLE t;");
    assert_eq!((s.line, s.col), (4, 1));
    assert_eq!(statement_keyword(s.ast.as_ref().unwrap()), "DROP TABLE");
}

#[test]
fn classification_flows_into_statements() {
    let text = "BEGIN;\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;";
    let s = stmts(text);
    assert_eq!(s[0].tx_control, Some(TxControl::Begin));
    assert_eq!(s[1].non_transactional, Some("CREATE INDEX CONCURRENTLY"));
    assert_eq!(s[1].tx_control, None);
    assert_eq!(s[2].tx_control, Some(TxControl::Commit));
}

/// The extension scripts shipped with PostgreSQL are a large corpus of real SQL
/// (dollar quotes, `\echo`, comments); none of it may be mis-split.
#[test]
fn postgresql_extension_scripts_split_cleanly() {
    let Ok(dir) = std::fs::read_dir("/usr/share/postgresql/15/extension") else {
        return;
    };
    let mut files = 0;
    let mut statements = 0;
    let mut metas = 0;
    for entry in dir {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = LineIndex::new(&text);
        let items = split(&text, 0..text.len(), &lines)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        files += 1;
        for item in items {
            match item {
                Item::Statement(s) => {
                    statements += 1;
                    // `@extschema@`-style placeholders are substituted by CREATE EXTENSION.
                    let placeholder = text[s.span.clone()].contains("@extschema")
                        || text[s.span.clone()].contains("@extowner@");
                    assert!(
                        s.syntax_error.is_none() || placeholder,
                        "{}:{}: {:?}",
                        path.display(),
                        s.line,
                        s.syntax_error
                    );
                    assert!(s.terminated, "{}:{}", path.display(), s.line);
                }
                Item::MetaCommand(m) => {
                    metas += 1;
                    assert!(
                        m.text.starts_with("\\echo"),
                        "{}: {}",
                        path.display(),
                        m.text
                    )
                }
            }
        }
    }
    assert!(
        files == 0 || (statements > 1000 && metas > 50),
        "{files} files, {statements} statements, {metas} meta-commands"
    );
}
