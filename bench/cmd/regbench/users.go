package main

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"os"
)

// user is one bench account; the same set is loaded into both servers.
type user struct {
	name, password string
}

// makeUsers returns n users u100000, u100001, … with distinct passwords.
func makeUsers(n int) []user {
	us := make([]user, n)
	for i := range us {
		name := fmt.Sprintf("u%d", 100000+i)
		h := fnv.New64a()
		h.Write([]byte(name))
		us[i] = user{name: name, password: fmt.Sprintf("pw%012x", h.Sum64()&0xffffffffffff)}
	}
	return us
}

func writeLines(path string, fn func(w *bufio.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fn(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeSippCSV writes the sipp injection file: field0 = user, field1 = password.
func writeSippCSV(path string, us []user) error {
	return writeLines(path, func(w *bufio.Writer) error {
		w.WriteString("SEQUENTIAL\n")
		for _, u := range us {
			fmt.Fprintf(w, "%s;%s\n", u.name, u.password)
		}
		return nil
	})
}

// writeKaopuCSV writes the `kaopu user import` file: name,password.
func writeKaopuCSV(path string, us []user) error {
	return writeLines(path, func(w *bufio.Writer) error {
		for _, u := range us {
			fmt.Fprintf(w, "%s,%s\n", u.name, u.password)
		}
		return nil
	})
}

// writeKamailioSQL writes the Kamailio 5.6 `version` and auth_db
// `subscriber` schema (from /usr/share/kamailio/db_sqlite when present)
// and one row per user with the plaintext password (calculate_ha1 yes).
func writeKamailioSQL(path string, us []user, domain string) error {
	schema := kamailioSchema()
	return writeLines(path, func(w *bufio.Writer) error {
		w.WriteString(schema)
		w.WriteString("\nBEGIN;\n")
		for _, u := range us {
			fmt.Fprintf(w, "INSERT INTO subscriber (username, domain, password) VALUES ('%s', '%s', '%s');\n",
				u.name, domain, u.password)
		}
		w.WriteString("COMMIT;\n")
		return nil
	})
}

// The 5.6 schema as shipped in kamailio-sqlite-modules; used when the
// package files are not where Debian puts them.
const kamailioSchemaFallback = `CREATE TABLE version (
    id INTEGER PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);
INSERT INTO version (table_name, table_version) values ('version','1');
CREATE TABLE subscriber (
    id INTEGER PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT subscriber_account_idx UNIQUE (username, domain)
);
CREATE INDEX subscriber_username_idx ON subscriber (username);
INSERT INTO version (table_name, table_version) values ('subscriber','7');
`

func kamailioSchema() string {
	const dir = "/usr/share/kamailio/db_sqlite/"
	std, err1 := os.ReadFile(dir + "standard-create.sql")
	auth, err2 := os.ReadFile(dir + "auth_db-create.sql")
	if err1 != nil || err2 != nil {
		return kamailioSchemaFallback
	}
	return string(std) + "\n" + string(auth)
}
