-- Reference data, loaded the way pg_dump writes it: COPY ... FROM stdin
-- with the rows inline, ended by a line holding only \.

-- migrate:up
CREATE TABLE countries (
    code  text PRIMARY KEY CHECK (length(code) = 2),
    name  text NOT NULL
);

COPY countries (code, name) FROM stdin;
AR	Argentina
DE	Germany
ES	Spain
FR	France
JP	Japan
US	United States
\.

-- migrate:down
DROP TABLE countries;
