"""The pre-order intake's block decision as one server-side function (preorders.intake calls
it once per block, with the block's COMMIT in the same round trip).

preorders_intake_block(requests, block_at, engine_block, commit_follows) locks the block's
batches (in id order), reads set-based what the block is decided on (the form keys already
used, each customer's units in the batch, the active options and their products, the
options' caps and the capped ones' units, the customers' open waitlist offers, locked), and
takes each request in arrival order, as preorders.services' checks do one by one: its form
key already used (its reservation), or by its twin earlier in the block (the twin's answer),
the batch gone, a deposit (the one-by-one path), the window, the quantity, the per-customer
limit, the option, the option's cap, the batch's room (with the fan's offer). Then one
statement inserts the admitted ones (a twin sent to another batch's form at the same
instant is skipped by the unique key, and answered with its reservation), their events,
claims the offers taken, and moves each batch's counters by what was inserted (the
CheckConstraint stands behind it). requests: the reservation's columns per request, and its
event's note; block_at: the block's instant; engine_block: the COMMIT need not wait for the
WAL flush (the engine flushes before answering); commit_follows: the COMMIT is in the same
round trip, so a partly taken offer (its rest goes to the next in line, in Python, before
the commit) makes the function raise FH001, and the caller sends the block again without.

One row per request (req = its index): made (ref = the reservation, num1 = the index of the
request that made it: itself or its twin's first), existing (ref = the form's reservation
from before), slow, gone, not_open (moment = the batch's opens_at), closed, too_few, limit
(num1 = the limit, num2 = the units held), not_an_option, option_short (num1 = units left
in it), batch_short (num1 = the room); then rows without one: close (ref = a batch to close
when full), reoffer (ref = a batch where an offer was partly taken). preorders.intake turns
the verdicts into preorders.services' messages.

A new reservation column needs the function again (a migration replacing it): it inserts
the columns by name, the defaults as values."""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION preorders_intake_block(
    requests json, block_at timestamptz, engine_block boolean, commit_follows boolean
) RETURNS TABLE (req integer, verdict text, ref bigint, num1 integer, num2 integer, moment timestamptz)
LANGUAGE plpgsql
-- Its statements are planned once a connection: a custom plan per call (the default for a
-- statement's first five runs, then whenever it looks cheaper) cost a third of the call.
-- Planned once, possibly while the tables are nearly empty (a new database, the first
-- minutes of a sale), a plan could scan a table it should look into by key, and go on
-- scanning it as it grows: every lookup here is by key, so no sequential scans.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $fn$
DECLARE
    counted CONSTANT text[] := ARRAY['held', 'charging', 'charged', 'payment_failed'];
    rs preorders_reservation[];  -- the requests, in arrival order (the reservation's columns)
    notes text[];                -- their events' notes
    n integer;
    held bigint[] := '{}';       -- the batches locked, in id order, and their rows
    locked preorders_preorderbatch[] := '{}';
    reserved integer[] := '{}';  -- their counters as the block grows them
    offered integer[] := '{}';
    any_offered boolean := false;
    keys_used jsonb;             -- "user:key" -> the reservation made with it
    user_units jsonb;            -- "batch:user" -> units held
    products jsonb;              -- active option -> its product
    option_caps jsonb;           -- "batch:option" -> its cap
    option_units jsonb := '{}';  -- "batch:option" -> units held, of the capped ones
    offers_open jsonb := '{}';   -- "batch:user" -> [offer id, units]
    seen jsonb := '{}';          -- "user:key" -> the first request in this block with it
    verdicts text[];
    refs bigint[];
    n1s integer[];
    n2s integer[];
    moments timestamptz[];
    admitted integer[] := '{}';  -- requests to insert
    claimed bigint[] := '{}';    -- offers they take, their units, and by whom
    claimed_units integer[] := '{}';
    claimed_by integer[] := '{}';
    reoffer bigint[] := '{}';    -- batches where an offer was only partly taken
    written bigint[];            -- batches where something was inserted
    inserted_by integer[];
    inserted_ids bigint[];
    r preorders_reservation;
    b preorders_preorderbatch;
    bi integer;
    i integer;
    f integer;
    twin text;
    already integer;
    option_cap integer;
    option_left integer;
    room integer;
    offer jsonb;
BEGIN
    IF engine_block THEN  -- the block's COMMIT does not wait for the WAL flush (the engine's)
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    SELECT array_agg(json_populate_record(NULL::preorders_reservation, x.value) ORDER BY x.n),
           array_agg(x.value ->> 'note' ORDER BY x.n)
      INTO rs, notes
      FROM json_array_elements(requests) WITH ORDINALITY AS x(value, n);
    n := coalesce(array_length(rs, 1), 0);
    IF n = 0 THEN
        RETURN;
    END IF;
    verdicts := array_fill(NULL::text, ARRAY[n]);
    refs := array_fill(NULL::bigint, ARRAY[n]);
    n1s := array_fill(NULL::integer, ARRAY[n]);
    n2s := array_fill(NULL::integer, ARRAY[n]);
    moments := array_fill(NULL::timestamptz, ARRAY[n]);

    FOR b IN
        SELECT * FROM preorders_preorderbatch p
         WHERE p.id = ANY(ARRAY(SELECT x.batch_id FROM unnest(rs) x))
         ORDER BY p.id
           FOR UPDATE
    LOOP
        held := held || b.id;
        locked := locked || b;
        reserved := reserved || b.reserved_units;
        offered := offered || b.offered_units;
        any_offered := any_offered OR b.offered_units > 0;
    END LOOP;

    -- What the block is decided on, read once its locks are held (a snapshot of their own).
    SELECT
        (SELECT jsonb_object_agg(q.user_id || ':' || q.request_key, x.id)
           FROM (SELECT DISTINCT q.user_id, q.request_key FROM unnest(rs) q) q
           JOIN LATERAL (  -- by the (user, key) unique index
                SELECT x.id FROM preorders_reservation x
                 WHERE x.user_id = q.user_id AND x.request_key = q.request_key) x ON true),
        (SELECT jsonb_object_agg(q.batch_id || ':' || q.user_id, s.total)
           FROM (SELECT DISTINCT q.batch_id, q.user_id FROM unnest(rs) q) q
          CROSS JOIN LATERAL (  -- each fan's rows in the batch, by its (batch, user) index
                SELECT sum(x.quantity) AS total FROM preorders_reservation x
                 WHERE x.batch_id = q.batch_id AND x.user_id = q.user_id
                   AND x.status = ANY(counted)) s
          WHERE s.total IS NOT NULL),
        (SELECT jsonb_object_agg(v.id, v.product_id) FROM catalog_variant v
          WHERE v.id = ANY(ARRAY(SELECT q.variant_id FROM unnest(rs) q)) AND v.is_active),
        (SELECT jsonb_object_agg(c.batch_id || ':' || c.variant_id, c.cap)
           FROM preorders_variantcap c
          WHERE c.batch_id = ANY(held)
            AND c.variant_id = ANY(ARRAY(SELECT q.variant_id FROM unnest(rs) q)))
      INTO keys_used, user_units, products, option_caps;
    keys_used := coalesce(keys_used, '{}');
    user_units := coalesce(user_units, '{}');
    products := coalesce(products, '{}');
    IF option_caps IS NOT NULL THEN  -- the units held of the capped options asked for
        SELECT coalesce(jsonb_object_agg(c.k, s.total), '{}') INTO option_units
          FROM jsonb_object_keys(option_caps) AS c(k)
         CROSS JOIN LATERAL (
                SELECT sum(x.quantity) AS total FROM preorders_reservation x
                 WHERE x.batch_id = split_part(c.k, ':', 1)::bigint
                   AND x.variant_id = split_part(c.k, ':', 2)::bigint
                   AND x.status = ANY(counted)) s
         WHERE s.total IS NOT NULL;
    END IF;
    option_caps := coalesce(option_caps, '{}');
    IF any_offered THEN  -- the open offers of the block's fans, locked
        SELECT coalesce(jsonb_object_agg(o.batch_id || ':' || o.user_id,
                                         jsonb_build_array(o.id, o.quantity)), '{}')
          INTO offers_open
          FROM (SELECT w.id, w.batch_id, w.user_id, w.quantity FROM preorders_waitlistentry w
                 WHERE w.batch_id = ANY(held)
                   AND w.user_id = ANY(ARRAY(SELECT q.user_id FROM unnest(rs) q))
                   AND w.status = 'offered' AND w.offer_expires_at > block_at
                 ORDER BY w.created_at, w.id
                   FOR UPDATE OF w) o;
    END IF;

    -- Each request in arrival order, against those numbers as the block grows them.
    FOR i IN 1 .. n LOOP
        r := rs[i];
        twin := r.user_id || ':' || r.request_key;
        IF keys_used ? twin THEN  -- the form was sent before: its reservation
            verdicts[i] := 'existing';
            refs[i] := (keys_used ->> twin)::bigint;
            CONTINUE;
        END IF;
        IF seen ? twin THEN  -- its twin earlier in this block: the same answer
            f := (seen ->> twin)::integer;
            verdicts[i] := verdicts[f];
            n1s[i] := n1s[f];
            n2s[i] := n2s[f];
            moments[i] := moments[f];
            CONTINUE;
        END IF;
        seen := seen || jsonb_build_object(twin, i);
        bi := array_position(held, r.batch_id);
        IF bi IS NULL THEN
            verdicts[i] := 'gone';
            CONTINUE;
        END IF;
        b := locked[bi];
        IF b.deposit_per_unit > 0 THEN
            verdicts[i] := 'slow';
            CONTINUE;
        END IF;
        IF b.status IN ('draft', 'scheduled') OR (b.status = 'open' AND block_at < b.opens_at) THEN
            verdicts[i] := 'not_open';
            moments[i] := b.opens_at;
            CONTINUE;
        END IF;
        IF b.status <> 'open' OR block_at >= b.closes_at THEN
            verdicts[i] := 'closed';
            CONTINUE;
        END IF;
        IF r.quantity < 1 THEN
            verdicts[i] := 'too_few';
            CONTINUE;
        END IF;
        already := coalesce((user_units ->> (b.id || ':' || r.user_id))::integer, 0);
        IF already + r.quantity > b.per_customer_limit THEN
            verdicts[i] := 'limit';
            n1s[i] := b.per_customer_limit;
            n2s[i] := already;
            CONTINUE;
        END IF;
        IF (products ->> r.variant_id::text)::bigint IS DISTINCT FROM b.product_id THEN
            verdicts[i] := 'not_an_option';
            CONTINUE;
        END IF;
        option_cap := (option_caps ->> (b.id || ':' || r.variant_id))::integer;
        IF option_cap IS NOT NULL THEN
            option_left := option_cap
                - coalesce((option_units ->> (b.id || ':' || r.variant_id))::integer, 0);
            IF r.quantity > option_left THEN
                verdicts[i] := 'option_short';
                n1s[i] := option_left;
                CONTINUE;
            END IF;
        END IF;
        offer := offers_open -> (b.id || ':' || r.user_id);
        IF b.cap IS NOT NULL THEN
            room := greatest(b.cap - reserved[bi] - offered[bi], 0)
                + coalesce((offer ->> 1)::integer, 0);
            IF r.quantity > room THEN
                verdicts[i] := 'batch_short';
                n1s[i] := room;
                CONTINUE;
            END IF;
        END IF;

        -- Admitted.
        user_units := user_units || jsonb_build_object(b.id || ':' || r.user_id, already + r.quantity);
        IF option_cap IS NOT NULL THEN
            option_units := option_units || jsonb_build_object(
                b.id || ':' || r.variant_id, option_cap - option_left + r.quantity);
        END IF;
        reserved[bi] := reserved[bi] + r.quantity;
        IF offer IS NOT NULL THEN
            IF (offer ->> 1)::integer > r.quantity THEN
                IF commit_follows THEN  -- the rest goes to the next in line before the COMMIT
                    RAISE EXCEPTION 'preorders_intake_block: an offer partly taken'
                        USING ERRCODE = 'FH001';
                END IF;
                reoffer := reoffer || b.id;
            END IF;
            offered[bi] := offered[bi] - (offer ->> 1)::integer;
            claimed := claimed || (offer ->> 0)::bigint;
            claimed_units := claimed_units || (offer ->> 1)::integer;
            claimed_by := claimed_by || i;
            offers_open := offers_open - (b.id || ':' || r.user_id);
        END IF;
        admitted := admitted || i;
        verdicts[i] := 'made';
        n1s[i] := i - 1;
    END LOOP;

    IF array_length(admitted, 1) > 0 THEN
        -- One statement: the reservations (a twin sent to another batch's form at the same
        -- instant is skipped by the unique key), their events, the offers taken, and the
        -- batches' counters by what was really inserted (their CheckConstraint stands behind).
        WITH a AS (
            SELECT t.i, rs[t.i] AS row, notes[t.i] AS note FROM unnest(admitted) AS t(i)
        ), ins AS (
            INSERT INTO preorders_reservation (
                batch_id, user_id, variant_id, saved_card_id, quantity, request_key,
                ship_name, ship_line1, ship_line2, ship_city, ship_postal_code, ship_country,
                ship_phone, status, deposit_paid, deposit_refunded, failure_message,
                receipt_due, created_at, updated_at
            )
            SELECT (a.row).batch_id, (a.row).user_id, (a.row).variant_id, (a.row).saved_card_id,
                   (a.row).quantity, (a.row).request_key, (a.row).ship_name, (a.row).ship_line1,
                   (a.row).ship_line2, (a.row).ship_city, (a.row).ship_postal_code,
                   (a.row).ship_country, (a.row).ship_phone, 'held', 0, 0, '', true,
                   block_at, block_at
              FROM a ORDER BY a.i
            ON CONFLICT (user_id, request_key) DO NOTHING
            RETURNING preorders_reservation.id, preorders_reservation.batch_id,
                      preorders_reservation.user_id, preorders_reservation.request_key,
                      preorders_reservation.quantity
        ), done AS (
            SELECT ins.*, a.i, a.note FROM ins
              JOIN a ON (a.row).user_id = ins.user_id AND (a.row).request_key = ins.request_key
        ), events AS (
            INSERT INTO preorders_preorderevent
                (batch_id, reservation_id, actor_id, from_status, to_status, note, created_at)
            SELECT done.batch_id, done.id, done.user_id, '', 'held', left(done.note, 300), block_at
              FROM done
        ), taken AS (
            SELECT c.id, c.units, c.i FROM unnest(claimed, claimed_units, claimed_by) AS c(id, units, i)
              JOIN done ON done.i = c.i
        ), offers_claimed AS (
            UPDATE preorders_waitlistentry w SET status = 'claimed' FROM taken WHERE w.id = taken.id
        ), counters AS (
            UPDATE preorders_preorderbatch p
               SET reserved_units = p.reserved_units + s.units,
                   offered_units = p.offered_units - s.freed
              FROM (SELECT done.batch_id, sum(done.quantity) AS units,
                           coalesce(sum(taken.units), 0) AS freed
                      FROM done LEFT JOIN taken ON taken.i = done.i
                     GROUP BY done.batch_id) s
             WHERE p.id = s.batch_id
        )
        SELECT array_agg(done.i), array_agg(done.id), array_agg(DISTINCT done.batch_id)
          INTO inserted_by, inserted_ids, written
          FROM done;
        FOR f IN 1 .. coalesce(array_length(inserted_by, 1), 0) LOOP
            refs[inserted_by[f]] := inserted_ids[f];
        END LOOP;
        FOR i IN 1 .. n LOOP
            CONTINUE WHEN verdicts[i] IS DISTINCT FROM 'made';
            f := n1s[i] + 1;
            IF f = i AND refs[i] IS NULL THEN  -- its twin sent to another batch's form won
                verdicts[i] := 'existing';
                SELECT x.id INTO refs[i] FROM preorders_reservation x
                 WHERE x.user_id = rs[i].user_id AND x.request_key = rs[i].request_key;
            ELSIF f <> i THEN
                verdicts[i] := verdicts[f];
                refs[i] := refs[f];
            END IF;
        END LOOP;
    END IF;

    RETURN QUERY
        SELECT (t.n - 1)::integer, t.v, t.id, t.a, t.b, t.m
          FROM unnest(verdicts, refs, n1s, n2s, moments) WITH ORDINALITY AS t(v, id, a, b, m, n);
    FOR bi IN 1 .. array_length(held, 1) LOOP
        b := locked[bi];
        IF b.id = ANY(written) AND b.close_when_full AND b.cap IS NOT NULL THEN
            RETURN QUERY SELECT NULL::integer, 'close'::text, b.id, NULL::integer, NULL::integer,
                                NULL::timestamptz;
        END IF;
        IF b.id = ANY(reoffer) THEN
            RETURN QUERY SELECT NULL::integer, 'reoffer'::text, b.id, NULL::integer,
                                NULL::integer, NULL::timestamptz;
        END IF;
    END LOOP;
END
$fn$;
"""

DROP = (
    "DROP FUNCTION IF EXISTS preorders_intake_block(json, timestamptz, boolean, boolean)"
)


class Migration(migrations.Migration):
    dependencies = [("preorders", "0003_reservation_intake_blocks")]

    operations = [migrations.RunSQL(FUNCTION, DROP)]
