-- The versioned price book (billing/price_book.hpp). Each version is one
-- JSON document (call rates, AI, voice, campaign, numbers, plans; money as
-- decimal strings of credits), immutable once published; the effective
-- version at an instant is the published one with the latest effective_from
-- at or before it. Instants BIGINT Unix milliseconds.
CREATE TABLE billing_price_books (
  version        BIGINT PRIMARY KEY,   -- 1, 2, ...
  status         TEXT NOT NULL,        -- draft | published
  effective_from BIGINT,               -- published: from when it prices
  note           TEXT NOT NULL,
  document       TEXT NOT NULL,        -- JSON
  created_by     TEXT NOT NULL,        -- actor "kind:id"
  created_at     BIGINT NOT NULL,
  published_by   TEXT,
  published_at   BIGINT
);
CREATE INDEX billing_price_books_effective ON billing_price_books (status, effective_from);

-- Version 1: the default book, in effect from the beginning of time.
INSERT INTO billing_price_books (version, status, effective_from, note, document, created_by, created_at,
                                 published_by, published_at)
VALUES (1, 'published', 0, 'default price book', '{"calls":[{"destination_class":"domestic","per_minute":"0.03","minimum_seconds":60,"increment_seconds":6},{"destination_class":"domestic_mobile","per_minute":"0.05","minimum_seconds":60,"increment_seconds":6},{"destination_class":"toll_free","per_minute":"0.02","minimum_seconds":6,"increment_seconds":6},{"destination_class":"international_1","per_minute":"0.1","minimum_seconds":60,"increment_seconds":6},{"destination_class":"international_2","per_minute":"0.3","minimum_seconds":60,"increment_seconds":60}],"ai":{"per_conversation_minute":"0.04","per_1k_llm_tokens":"0.002","per_stt_second":"0.0003"},"voice":{"per_1k_characters":"0.03"},"campaign":{"per_dial_attempt":"0.005"},"numbers":[{"country":"US","number_type":"local","monthly":"2","regulatory":"0.5"},{"country":"US","number_type":"toll_free","monthly":"4","regulatory":"0.5"},{"country":"US","number_type":"mobile","monthly":"3","regulatory":"0.5"},{"country":"CA","number_type":"local","monthly":"2","regulatory":"0.5"},{"country":"CA","number_type":"toll_free","monthly":"4","regulatory":"0.5"},{"country":"GB","number_type":"local","monthly":"2.5","regulatory":"0.75"},{"country":"GB","number_type":"mobile","monthly":"3.5","regulatory":"0.75"},{"country":"DE","number_type":"local","monthly":"2.5","regulatory":"1"}],"plans":[{"code":"starter","name":"Starter","price_per_cycle":"49","included_credits":"60"},{"code":"growth","name":"Growth","price_per_cycle":"199","included_credits":"260"},{"code":"scale","name":"Scale","price_per_cycle":"799","included_credits":"1100"}]}', 'system:migration', 0, 'system:migration', 0);

-- The price-book version a settled reservation's usage was priced with (NULL: priced by the caller).
ALTER TABLE billing_reservations ADD COLUMN price_version BIGINT;
