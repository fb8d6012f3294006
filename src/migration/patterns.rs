//! `pgrollout new --pattern NAME`: the safe multi-step sequences for the changes that
//! lock or break a busy table when written the obvious way.
//!
//! Each pattern turns a few parameters into the text of one or more migration files, in
//! the order they must be applied; each file has an up section that passes `lint`
//! (allow directives, with their reason, where a step is safe only because of the step
//! before it) and a down section that `test` can check. Pure text: the caller decides
//! versions and writes the files, and looks up what the schema already knows (a
//! column's type, an enum's last value).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// The patterns, in the order `--help` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    AddIndex,
    AddForeignKey,
    AddCheck,
    AddNotNull,
    ChangeColumnType,
    RenameColumn,
    DropColumn,
    AddEnumValue,
}

impl Pattern {
    pub const ALL: [Pattern; 8] = [
        Pattern::AddIndex,
        Pattern::AddForeignKey,
        Pattern::AddCheck,
        Pattern::AddNotNull,
        Pattern::ChangeColumnType,
        Pattern::RenameColumn,
        Pattern::DropColumn,
        Pattern::AddEnumValue,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Pattern::AddIndex => "add-index",
            Pattern::AddForeignKey => "add-foreign-key",
            Pattern::AddCheck => "add-check",
            Pattern::AddNotNull => "add-not-null",
            Pattern::ChangeColumnType => "change-column-type",
            Pattern::RenameColumn => "rename-column",
            Pattern::DropColumn => "drop-column",
            Pattern::AddEnumValue => "add-enum-value",
        }
    }

    /// The flags it needs and what it writes, one line.
    pub fn summary(self) -> &'static str {
        match self {
            Pattern::AddIndex => "--table --column[,…] [--constraint NAME]: CREATE INDEX CONCURRENTLY in a transaction:false file of its own",
            Pattern::AddForeignKey => "--table --column --references TABLE[(COL)] [--constraint NAME]: add NOT VALID, then VALIDATE in a second file",
            Pattern::AddCheck => "--table --check EXPR [--constraint NAME]: add NOT VALID, then VALIDATE in a second file",
            Pattern::AddNotNull => "--table --column: CHECK (col IS NOT NULL) NOT VALID → VALIDATE → SET NOT NULL and drop the check",
            Pattern::ChangeColumnType => "--table --column --type: new column kept in sync by a trigger → batched backfill → swap the names",
            Pattern::RenameColumn => "--table --column --to [--type]: expand (new column, two-way sync trigger, batched backfill); later --contract drops the old one",
            Pattern::DropColumn => "--table --column: mark it deprecated; later, when no code uses it, --contract [--type] drops it",
            Pattern::AddEnumValue => "--type ENUM --value V [--after V | --before V]: ALTER TYPE … ADD VALUE in a transaction:false file of its own",
        }
    }

    pub fn parse(name: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// What `new --pattern` was given, with what the schema model knows filled in.
#[derive(Debug, Clone, Default)]
pub struct PatternArgs {
    pub table: Option<String>,
    /// One column, or several separated by commas (add-index).
    pub column: Option<String>,
    /// The new type (change-column-type), the column's type (rename-column,
    /// drop-column --contract) or the enum type (add-enum-value).
    pub type_name: Option<String>,
    pub references: Option<String>,
    pub check: Option<String>,
    pub constraint: Option<String>,
    pub to: Option<String>,
    pub value: Option<String>,
    pub after: Option<String>,
    pub before: Option<String>,
    pub contract: bool,
    /// The column's current type, from the earlier migrations, when known.
    pub known_type: Option<String>,
    /// The enum's last value, from the earlier migrations, when known.
    pub enum_last: Option<String>,
}

/// One file to write: the snake_case name part and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternFile {
    pub name: String,
    pub text: String,
}

/// Why a pattern cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("--pattern {pattern} needs {flag}: {hint}")]
    Missing {
        pattern: &'static str,
        flag: &'static str,
        hint: String,
    },
    #[error("--pattern {pattern}: {flag} `{value}` is not a plain SQL name ({what})")]
    BadName {
        pattern: &'static str,
        flag: &'static str,
        value: String,
        what: &'static str,
    },
    #[error("--pattern {pattern}: {message}")]
    Invalid {
        pattern: &'static str,
        message: String,
    },
}

/// The files of `pattern` for `args`, in the order they are to be applied.
pub fn render(pattern: Pattern, args: &PatternArgs) -> Result<Vec<PatternFile>, PatternError> {
    let p = Params { pattern, args };
    let files = match pattern {
        Pattern::AddIndex => p.add_index()?,
        Pattern::AddForeignKey => p.add_foreign_key()?,
        Pattern::AddCheck => p.add_check()?,
        Pattern::AddNotNull => p.add_not_null()?,
        Pattern::ChangeColumnType => p.change_column_type()?,
        Pattern::RenameColumn => p.rename_column()?,
        Pattern::DropColumn => p.drop_column()?,
        Pattern::AddEnumValue => p.add_enum_value()?,
    };
    for f in &files {
        check_parses(pattern, f)?;
    }
    Ok(files)
}

/// Every statement of the file must parse: an odd `--type` or `--check` is reported here,
/// naming the pattern, not later by `apply`.
fn check_parses(pattern: Pattern, f: &PatternFile) -> Result<(), PatternError> {
    let lines = crate::sql::LineIndex::new(&f.text);
    let invalid = |message: String| PatternError::Invalid {
        pattern: pattern.name(),
        message,
    };
    let items = crate::sql::split(&f.text, 0..f.text.len(), &lines).map_err(|e| {
        invalid(format!(
            "the SQL written from the flags does not split: {e}"
        ))
    })?;
    for item in items {
        if let crate::sql::Item::Statement(s) = item {
            if let Some(err) = s.syntax_error {
                let text = f.text[s.span.clone()].trim();
                return Err(invalid(format!(
                    "the SQL written from the flags does not parse ({}): {text}",
                    err.message
                )));
            }
        }
    }
    Ok(())
}

struct Params<'a> {
    pattern: Pattern,
    args: &'a PatternArgs,
}

/// A name for an object the pattern creates: PostgreSQL truncates identifiers at 63
/// bytes, so a longer one is cut and given a hash of the full name to stay unique.
fn object_name(parts: &[&str]) -> String {
    let full = parts.join("_");
    if full.len() <= 63 {
        return full;
    }
    let hash = hex::encode(&Sha256::digest(full.as_bytes())[..4]);
    let mut cut = 54;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{hash}", &full[..cut])
}

fn is_plain_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// `'it''s'`: a string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Params<'_> {
    fn missing(&self, flag: &'static str, hint: &str) -> PatternError {
        PatternError::Missing {
            pattern: self.pattern.name(),
            flag,
            hint: hint.to_string(),
        }
    }

    fn name_flag(
        &self,
        flag: &'static str,
        value: &Option<String>,
        hint: &str,
        qualified: bool,
    ) -> Result<String, PatternError> {
        let v = value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| self.missing(flag, hint))?;
        let ok = if qualified {
            v.split('.').count() <= 2 && v.split('.').all(is_plain_name)
        } else {
            is_plain_name(v)
        };
        if !ok {
            return Err(PatternError::BadName {
                pattern: self.pattern.name(),
                flag,
                value: v.to_string(),
                what: if qualified {
                    "letters, digits and _, optionally schema-qualified: app.orders"
                } else {
                    "letters, digits and _"
                },
            });
        }
        Ok(v.to_string())
    }

    fn table(&self) -> Result<Table, PatternError> {
        let t = self.name_flag(
            "--table",
            &self.args.table,
            "the table to change, e.g. --table orders",
            true,
        )?;
        Ok(Table::new(t))
    }

    fn column(&self) -> Result<String, PatternError> {
        self.name_flag(
            "--column",
            &self.args.column,
            "the column, e.g. --column customer_id",
            false,
        )
    }

    fn free_text(
        &self,
        flag: &'static str,
        value: &Option<String>,
        hint: &str,
    ) -> Result<String, PatternError> {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| self.missing(flag, hint))
    }

    /// The column's type: `--type`, else what the earlier migrations say.
    fn column_type(&self, table: &Table, column: &str) -> Result<String, PatternError> {
        if let Some(t) = self
            .args
            .type_name
            .as_deref()
            .filter(|t| !t.trim().is_empty())
        {
            return Ok(t.trim().to_string());
        }
        self.args.known_type.clone().ok_or_else(|| {
            self.missing(
                "--type",
                &format!(
                    "the type of {}.{column} is not known from the migrations (no earlier file creates it): pass it, e.g. --type text",
                    table.sql
                ),
            )
        })
    }

    fn add_index(&self) -> Result<Vec<PatternFile>, PatternError> {
        let t = self.table()?;
        let cols_raw = self.free_text(
            "--column",
            &self.args.column,
            "the column(s) to index, e.g. --column customer_id or --column a,b",
        )?;
        let cols: Vec<&str> = cols_raw.split(',').map(str::trim).collect();
        if let Some(bad) = cols.iter().find(|c| !is_plain_name(c)) {
            return Err(PatternError::BadName {
                pattern: self.pattern.name(),
                flag: "--column",
                value: bad.to_string(),
                what: "letters, digits and _; several columns separated by commas",
            });
        }
        let mut parts = vec![t.name.as_str()];
        parts.extend(&cols);
        parts.push("idx");
        let name = match &self.args.constraint {
            Some(_) => self.name_flag("--constraint", &self.args.constraint, "", false)?,
            None => object_name(&parts),
        };
        let mut text = header(
            &format!("Add index {name} on {} ({})", t.sql, cols.join(", ")),
            &[
                "Pattern add-index: CONCURRENTLY builds the index without blocking writes (it waits",
                "for running transactions instead), so it cannot run in a transaction: this file is",
                "transaction:false and holds nothing else. If the build fails it leaves an INVALID",
                "index; drop it (`pgrollout repair` says how) before running this again.",
            ],
        );
        let _ = write!(
            text,
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {} ({});\n\n\
             -- migrate:down transaction:false\nDROP INDEX CONCURRENTLY IF EXISTS {};\n",
            t.sql,
            cols.join(", "),
            t.qualify(&name)
        );
        Ok(vec![PatternFile {
            name: format!("add_index_{name}"),
            text,
        }])
    }

    /// Add `definition` NOT VALID in one file, VALIDATE it in the next.
    fn not_valid_then_validate(
        &self,
        t: &Table,
        name: &str,
        definition: &str,
        what: &str,
    ) -> Vec<PatternFile> {
        let add = format!(
            "ALTER TABLE {} ADD CONSTRAINT {name} {definition} NOT VALID;",
            t.sql
        );
        let mut first = header(
            &format!("Add {what} {name} to {} (NOT VALID)", t.sql),
            &[
                &format!(
                    "Pattern {}: NOT VALID adds the constraint without scanning the table (a",
                    self.pattern.name()
                ),
                "brief lock); new and updated rows are checked from now on. The next file",
                "validates the old rows.",
            ],
        );
        let _ = write!(
            first,
            "-- migrate:up\n{add}\n\n-- migrate:down\nALTER TABLE {} DROP CONSTRAINT IF EXISTS {name};\n",
            t.sql
        );
        let mut second = header(
            &format!("Validate {what} {name} on {}", t.sql),
            &[
                &format!(
                    "Pattern {}: VALIDATE CONSTRAINT scans the table under SHARE UPDATE",
                    self.pattern.name()
                ),
                "EXCLUSIVE, which lets reads and writes go on. The down puts the constraint back",
                "as NOT VALID.",
            ],
        );
        let _ = write!(
            second,
            "-- migrate:up\nALTER TABLE {} VALIDATE CONSTRAINT {name};\n\n\
             -- migrate:down\nALTER TABLE {} DROP CONSTRAINT {name};\n{add}\n",
            t.sql, t.sql
        );
        vec![
            PatternFile {
                name: format!("add_{name}_not_valid"),
                text: first,
            },
            PatternFile {
                name: format!("validate_{name}"),
                text: second,
            },
        ]
    }

    fn add_foreign_key(&self) -> Result<Vec<PatternFile>, PatternError> {
        let t = self.table()?;
        let col = self.column()?;
        let refs = self.free_text(
            "--references",
            &self.args.references,
            "the referenced table and column, e.g. --references customers(id) (the primary key when no column is given)",
        )?;
        let (ref_table, ref_cols) = match refs.split_once('(') {
            Some((tbl, rest)) => (
                tbl.trim().to_string(),
                Some(rest.trim_end_matches(')').trim().to_string()),
            ),
            None => (refs.clone(), None),
        };
        let ref_table = self.name_flag("--references", &Some(ref_table), "", true)?;
        let target = match ref_cols {
            Some(c) => {
                let c = self.name_flag("--references", &Some(c), "", false)?;
                format!("{ref_table} ({c})")
            }
            None => ref_table,
        };
        let name = match &self.args.constraint {
            Some(_) => self.name_flag("--constraint", &self.args.constraint, "", false)?,
            None => object_name(&[&t.name, &col, "fkey"]),
        };
        let definition = format!("FOREIGN KEY ({col}) REFERENCES {target}");
        Ok(self.not_valid_then_validate(&t, &name, &definition, "foreign key"))
    }

    fn add_check(&self) -> Result<Vec<PatternFile>, PatternError> {
        let t = self.table()?;
        let check = self.free_text(
            "--check",
            &self.args.check,
            "the condition, e.g. --check 'total >= 0'",
        )?;
        let name = match &self.args.constraint {
            Some(_) => self.name_flag("--constraint", &self.args.constraint, "", false)?,
            None => object_name(&[&t.name, "check"]),
        };
        Ok(
            self.not_valid_then_validate(
                &t,
                &name,
                &format!("CHECK ({check})"),
                "check constraint",
            ),
        )
    }

    fn add_not_null(&self) -> Result<Vec<PatternFile>, PatternError> {
        let t = self.table()?;
        let col = self.column()?;
        let name = object_name(&[&t.name, &col, "not_null"]);
        let definition = format!("CHECK ({col} IS NOT NULL)");
        let mut files = self.not_valid_then_validate(&t, &name, &definition, "check constraint");
        let mut third = header(
            &format!("Set {}.{col} NOT NULL", t.sql),
            &[
                "Pattern add-not-null: with the valid CHECK (col IS NOT NULL) of the previous file,",
                "PostgreSQL 12+ sets NOT NULL without scanning the table; the check is then redundant.",
            ],
        );
        let _ = write!(
            third,
            "-- migrate:up\n\
             -- pgrollout:allow set-not-null-scan the valid {name} (previous migration) proves there is no NULL: PostgreSQL 12+ skips the scan\n\
             ALTER TABLE {tbl} ALTER COLUMN {col} SET NOT NULL;\n\
             ALTER TABLE {tbl} DROP CONSTRAINT {name};\n\n\
             -- migrate:down\n\
             ALTER TABLE {tbl} ADD CONSTRAINT {name} {definition};\n\
             ALTER TABLE {tbl} ALTER COLUMN {col} DROP NOT NULL;\n",
            tbl = t.sql
        );
        files.push(PatternFile {
            name: format!("set_{}_{col}_not_null", t.name),
            text: third,
        });
        Ok(files)
    }

    fn change_column_type(&self) -> Result<Vec<PatternFile>, PatternError> {
        let t = self.table()?;
        let col = self.column()?;
        let ty = self.free_text(
            "--type",
            &self.args.type_name,
            "the new type, e.g. --type bigint or --type 'numeric(12,2)'",
        )?;
        let new_col = object_name(&[&col, "new"]);
        let old_col = object_name(&[&col, "old"]);
        let sync = Sync::new(&t, &col, "sync");
        let body = format!("  NEW.{new_col} := NEW.{col}::{ty};\n  RETURN NEW;\n");
        let mut first = header(
            &format!("Change {}.{col} to {ty} (step 1 of 3: new column kept in sync)", t.sql),
            &[
                "Pattern change-column-type: ALTER COLUMN … TYPE would rewrite the table under ACCESS",
                "EXCLUSIVE. Instead: a new column (catalog-only), filled by a trigger for every row",
                "written from now on; the next file backfills the old rows in batches, the third",
                "swaps the names. Copy defaults, NOT NULL (pattern add-not-null), indexes and",
                "constraints of the old column to the new one between steps 2 and 3 if it has any.",
            ],
        );
        let _ = write!(
            first,
            "-- migrate:up\nALTER TABLE {tbl} ADD COLUMN {new_col} {ty};\n{create}\n\
             -- migrate:down\n{drop}ALTER TABLE {tbl} DROP COLUMN IF EXISTS {new_col};\n",
            tbl = t.sql,
            create = sync.create(&body),
            drop = sync.drop(),
        );
        let second = backfill(
            &t,
            &format!(
                "Change {}.{col} to {ty} (step 2 of 3: backfill in batches)",
                t.sql
            ),
            "change-column-type",
            &new_col,
            &format!("{col}::{ty}"),
            &col,
        );
        let mut third = header(
            &format!("Change {}.{col} to {ty} (step 3 of 3: swap)", t.sql),
            &[
                "Pattern change-column-type: both columns hold the same values now; the renames",
                "are catalog-only. The old values stay in the _old column until no code needs them:",
            ],
        );
        third.pop();
        let _ = writeln!(
            third,
            "--   then `pgrollout new --pattern drop-column --table {} --column {old_col}`.\n",
            t.sql
        );
        let allow = format!("-- pgrollout:allow rename-column swap of the change-column-type pattern: {new_col} holds the values of {col} as {ty}");
        let _ = write!(
            third,
            "-- migrate:up\n{drop}{allow}\nALTER TABLE {tbl} RENAME COLUMN {col} TO {old_col};\n{allow}\n\
             ALTER TABLE {tbl} RENAME COLUMN {new_col} TO {col};\n\n\
             -- migrate:down\nALTER TABLE {tbl} RENAME COLUMN {col} TO {new_col};\n\
             ALTER TABLE {tbl} RENAME COLUMN {old_col} TO {col};\n{create}",
            tbl = t.sql,
            drop = sync.drop(),
            create = sync.create(&body),
        );
        Ok(vec![
            PatternFile {
                name: format!("add_{new_col}_to_{}", t.name),
                text: first,
            },
            PatternFile {
                name: format!("backfill_{}_{new_col}", t.name),
                text: second,
            },
            PatternFile {
                name: format!("swap_{}_{col}", t.name),
                text: third,
            },
        ])
    }

    fn rename_column(&self) -> Result<Vec<PatternFile>, PatternError> {
        let t = self.table()?;
        let col = self.column()?;
        let to = self.name_flag(
            "--to",
            &self.args.to,
            "the new name, e.g. --to email",
            false,
        )?;
        let ty = self.column_type(&t, &col)?;
        let sync = Sync::new(&t, &to, "mirror");
        let body = format!(
            "  IF TG_OP = 'INSERT' THEN\n    IF NEW.{to} IS NULL THEN NEW.{to} := NEW.{col}; ELSE NEW.{col} := NEW.{to}; END IF;\n  \
             ELSIF NEW.{to} IS DISTINCT FROM OLD.{to} THEN\n    NEW.{col} := NEW.{to};\n  ELSE\n    NEW.{to} := NEW.{col};\n  END IF;\n  RETURN NEW;\n"
        );
        if self.args.contract {
            let mut text = header(
                &format!("Rename {}.{col} to {to} (contract: drop {col})", t.sql),
                &[
                    "Pattern rename-column, contract step: apply once every running version of the",
                    "code reads and writes the new name only.",
                ],
            );
            let _ = write!(
                text,
                "-- migrate:up\n{drop}\
                 -- pgrollout:allow ban-drop-column contract step of rename-column: code uses {to}, kept equal to {col} by the mirror trigger until now\n\
                 ALTER TABLE {tbl} DROP COLUMN {col};\n\n\
                 -- migrate:down\nALTER TABLE {tbl} ADD COLUMN {col} {ty};\n\
                 UPDATE {tbl} SET {col} = {to};\n{create}",
                tbl = t.sql,
                drop = sync.drop(),
                create = sync.create(&body),
            );
            return Ok(vec![PatternFile {
                name: format!("drop_{col}_from_{}", t.name),
                text,
            }]);
        }
        let mut first = header(
            &format!(
                "Rename {}.{col} to {to} (expand, step 1 of 2: new column kept in sync)",
                t.sql
            ),
            &[
                "Pattern rename-column: RENAME COLUMN breaks every running query that uses the old",
                "name. Instead: the new column, and a trigger that mirrors writes of either name",
                "into the other, so old and new code both work; the next file backfills old rows.",
                "Move the code to the new name, then write the contract step:",
            ],
        );
        first.pop();
        let _ = writeln!(
            first,
            "--   `pgrollout new --pattern rename-column --table {} --column {col} --to {to} --contract`.\n",
            t.sql
        );
        let _ = write!(
            first,
            "-- migrate:up\nALTER TABLE {tbl} ADD COLUMN {to} {ty};\n{create}\n\
             -- migrate:down\n{drop}ALTER TABLE {tbl} DROP COLUMN IF EXISTS {to};\n",
            tbl = t.sql,
            create = sync.create(&body),
            drop = sync.drop(),
        );
        let second = backfill(
            &t,
            &format!(
                "Rename {}.{col} to {to} (expand, step 2 of 2: backfill in batches)",
                t.sql
            ),
            "rename-column",
            &to,
            &col,
            &col,
        );
        Ok(vec![
            PatternFile {
                name: format!("add_{to}_to_{}", t.name),
                text: first,
            },
            PatternFile {
                name: format!("backfill_{}_{to}", t.name),
                text: second,
            },
        ])
    }

    fn drop_column(&self) -> Result<Vec<PatternFile>, PatternError> {
        let t = self.table()?;
        let col = self.column()?;
        let deprecated = literal(&format!(
            "deprecated: no code may use it; dropped by `pgrollout new --pattern drop-column --table {} --column {col} --contract`",
            t.sql
        ));
        if self.args.contract {
            let ty = self.column_type(&t, &col)?;
            let mut text = header(
                &format!("Drop {}.{col}", t.sql),
                &[
                    "Pattern drop-column, step 2: apply once no running version of the code reads or",
                    "writes the column (ORMs that list columns count). The down adds it back, empty.",
                ],
            );
            let _ = write!(
                text,
                "-- migrate:up\n\
                 -- pgrollout:allow ban-drop-column drop-column pattern: the column was marked deprecated and code stopped using it\n\
                 ALTER TABLE {tbl} DROP COLUMN {col};\n\n\
                 -- migrate:down\nALTER TABLE {tbl} ADD COLUMN {col} {ty};\n\
                 COMMENT ON COLUMN {tbl}.{col} IS {deprecated};\n",
                tbl = t.sql
            );
            return Ok(vec![PatternFile {
                name: format!("drop_{col}_from_{}", t.name),
                text,
            }]);
        }
        let mut text = header(
            &format!("Stop using {}.{col} (drop-column, step 1 of 2)", t.sql),
            &[
                "Pattern drop-column: dropping a column that running code still selects or inserts",
                "breaks it. This marks the column deprecated (the comment shows in \\d+ and in",
                "schema tools). Deploy code that no longer uses it, then write step 2:",
            ],
        );
        text.pop();
        let _ = writeln!(
            text,
            "--   `pgrollout new --pattern drop-column --table {} --column {col} --contract`.\n",
            t.sql
        );
        let _ = write!(
            text,
            "-- migrate:up\nCOMMENT ON COLUMN {tbl}.{col} IS {deprecated};\n\n\
             -- migrate:down\nCOMMENT ON COLUMN {tbl}.{col} IS NULL;\n",
            tbl = t.sql
        );
        Ok(vec![PatternFile {
            name: format!("deprecate_{}_{col}", t.name),
            text,
        }])
    }

    fn add_enum_value(&self) -> Result<Vec<PatternFile>, PatternError> {
        let ty = self.name_flag(
            "--type",
            &self.args.type_name,
            "the enum type, e.g. --type order_status",
            true,
        )?;
        let value = self.free_text(
            "--value",
            &self.args.value,
            "the new label, e.g. --value shipped",
        )?;
        let place = match (&self.args.after, &self.args.before, &self.args.enum_last) {
            (Some(_), Some(_), _) => {
                return Err(PatternError::Invalid {
                    pattern: self.pattern.name(),
                    message: "give --after or --before, not both".into(),
                })
            }
            (Some(a), None, _) => format!(" AFTER {}", literal(a)),
            (None, Some(b), _) => format!(" BEFORE {}", literal(b)),
            (None, None, Some(last)) => format!(" AFTER {}", literal(last)),
            (None, None, None) => String::new(),
        };
        let mut text = header(
            &format!("Add {} to enum {ty}", literal(&value)),
            &[
                "Pattern add-enum-value: a value added in a transaction cannot be used until it",
                "commits, so it gets a file of its own (transaction:false; IF NOT EXISTS makes it",
                "safe to run again). PostgreSQL cannot remove an enum value: there is no down.",
            ],
        );
        let order = if place.is_empty() {
            "-- pgrollout:allow require-enum-value-ordering the enum's values are not known from the migrations: appended at the end (pass --after or --before to place it)\n"
        } else {
            ""
        };
        let _ = write!(
            text,
            "-- migrate:up transaction:false\n\
             -- pgrollout:allow require-down PostgreSQL has no ALTER TYPE … DROP VALUE\n\
             {order}ALTER TYPE {ty} ADD VALUE IF NOT EXISTS {}{place};\n",
            literal(&value)
        );
        let slug: String = crate::migration::snake_case(&value);
        Ok(vec![PatternFile {
            name: format!(
                "add_{}_to_{}",
                if slug.is_empty() { "value" } else { &slug },
                ty.replace('.', "_")
            ),
            text,
        }])
    }
}

/// A table as given on the command line: `orders` or `app.orders`.
struct Table {
    /// As written in the SQL.
    sql: String,
    /// Without the schema, for object names.
    name: String,
    schema: Option<String>,
}

impl Table {
    fn new(sql: String) -> Table {
        let (schema, name) = match sql.split_once('.') {
            Some((s, n)) => (Some(s.to_string()), n.to_string()),
            None => (None, sql.clone()),
        };
        Table { sql, name, schema }
    }

    /// `name` in the table's schema.
    fn qualify(&self, name: &str) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{name}"),
            None => name.to_string(),
        }
    }
}

/// The trigger (and its function) that keeps two columns in step.
struct Sync {
    table: String,
    function: String,
    trigger: String,
}

impl Sync {
    fn new(t: &Table, column: &str, what: &str) -> Sync {
        Sync {
            table: t.sql.clone(),
            function: t.qualify(&object_name(&[&t.name, column, what])),
            trigger: object_name(&[&t.name, column, what]),
        }
    }

    fn create(&self, body: &str) -> String {
        format!(
            "CREATE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{body}END\n$$;\n\
             CREATE TRIGGER {tr} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {f}();\n",
            f = self.function,
            tr = self.trigger,
            t = self.table,
        )
    }

    fn drop(&self) -> String {
        format!(
            "DROP TRIGGER IF EXISTS {} ON {};\nDROP FUNCTION IF EXISTS {}();\n",
            self.trigger, self.table, self.function
        )
    }
}

/// A `transaction:false` file that fills `target` from `expr` a batch at a time, each
/// batch its own transaction, so no row stays locked for long and the trigger of the
/// previous file covers the rows written meanwhile.
fn backfill(
    t: &Table,
    title: &str,
    pattern: &str,
    target: &str,
    expr: &str,
    source: &str,
) -> String {
    let mut text = header(
        title,
        &[
            &format!("Pattern {pattern}: 10 000 rows per transaction (COMMIT inside DO needs a"),
            "transaction:false file); rows written meanwhile are filled by the trigger. Safe to",
            "run again: it only touches rows still to fill.",
        ],
    );
    let _ = write!(
        text,
        "-- migrate:up transaction:false\n\
         DO $$\nDECLARE\n  n bigint;\nBEGIN\n  LOOP\n    \
         UPDATE {tbl} SET {target} = {expr}\n     WHERE ctid = ANY (ARRAY(SELECT ctid FROM {tbl} WHERE {target} IS NULL AND {source} IS NOT NULL LIMIT 10000));\n    \
         GET DIAGNOSTICS n = ROW_COUNT;\n    EXIT WHEN n = 0;\n    COMMIT;\n  END LOOP;\nEND\n$$;\n\n\
         -- migrate:down\n-- Nothing to undo: the backfill only filled {target}, which the previous file's down drops.\nSELECT 1;\n",
        tbl = t.sql
    );
    text
}

fn header(title: &str, lines: &[&str]) -> String {
    let mut s = format!("-- {title}\n");
    for l in lines {
        let _ = writeln!(s, "-- {l}");
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> PatternArgs {
        PatternArgs {
            table: Some("orders".into()),
            column: Some("customer_id".into()),
            ..PatternArgs::default()
        }
    }

    #[test]
    fn missing_flags_are_named() {
        let e = render(Pattern::AddForeignKey, &args()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--pattern add-foreign-key needs --references: the referenced table and column, e.g. --references customers(id) (the primary key when no column is given)"
        );
        let e = render(Pattern::AddIndex, &PatternArgs::default()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--pattern add-index needs --table"),
            "{e}"
        );
        let e = render(
            Pattern::RenameColumn,
            &PatternArgs {
                to: Some("client_id".into()),
                ..args()
            },
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("the type of orders.customer_id is not known"),
            "{e}"
        );
    }

    #[test]
    fn bad_names_and_bad_sql_are_refused() {
        let e = render(
            Pattern::AddIndex,
            &PatternArgs {
                table: Some("orders; drop".into()),
                ..args()
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                PatternError::BadName {
                    flag: "--table",
                    ..
                }
            ),
            "{e}"
        );
        let e = render(
            Pattern::AddCheck,
            &PatternArgs {
                check: Some("total >=".into()),
                ..args()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not parse"), "{e}");
    }

    #[test]
    fn long_names_are_cut_with_a_hash() {
        let n = object_name(&["a".repeat(40).as_str(), &"b".repeat(40), "idx"]);
        assert_eq!(n.len(), 63);
        assert_ne!(
            n,
            object_name(&["a".repeat(40).as_str(), &"c".repeat(40), "idx"])
        );
    }

    #[test]
    fn every_pattern_is_listed_and_parses_back() {
        for p in Pattern::ALL {
            assert_eq!(Pattern::parse(p.name()), Some(p));
        }
    }
}
