-- 0004: secrets every quire instance on this database shares. `token` is the JWT signing
-- secret when --jwt-secret is not given: the first instance to start inserts one, the others
-- read it back, so every instance accepts every other's tokens.

CREATE TABLE secrets (
    name  text PRIMARY KEY,
    value text NOT NULL CHECK (length(value) >= 32)
);
