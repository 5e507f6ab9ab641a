"""The pre-order intake's block decision as one server-side function (preorders.intake calls
it once per block, with the block's COMMIT in the same round trip).

preorders_intake_block(requests, block_at, engine_block, commit_follows) locks the block's batches
(in id order), then takes each request in arrival order: its form key already used (by an
earlier reservation, or by its twin earlier in this block), the batch gone, a deposit (the
one-by-one path), the window, the quantity, the per-customer limit, the option (active, of
the batch's product), the option's cap, the batch's room (with the fan's waitlist offer);
admitted, its reservation and its event are inserted at once, so the next request of the
block is decided against the table as it now is (its units, the option's units). Then one
UPDATE of each batch's counters (the CheckConstraint stands behind it). One row per request
(req = its index), plus rows without one for the batches to close when full ('close') and
those where an offer was only partly taken ('reoffer': the caller offers the rest to the
waitlist, in the same transaction; when a COMMIT follows in the same round trip it cannot,
so the function raises FH001 and the caller writes the block again without the COMMIT).

Verdicts: made (ref = the reservation, num1 = the index of the request that made it: itself
or its twin's first), existing (ref: the form's reservation from before this block, or one
a twin sent to another batch's form committed meanwhile), slow, gone, not_open (moment = the
batch's opens_at), closed, too_few, limit (num1 = the limit, num2 = the units already held),
not_an_option, option_short (num1 = units left in it), batch_short (num1 = the room). The
messages are preorders.services' (preorders.intake turns the verdicts into them)."""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION preorders_intake_block(
    requests json, block_at timestamptz, engine_block boolean, commit_follows boolean
) RETURNS TABLE (req integer, verdict text, ref bigint, num1 integer, num2 integer, moment timestamptz)
LANGUAGE plpgsql AS $fn$
DECLARE
    counted CONSTANT text[] := ARRAY['held', 'charging', 'charged', 'payment_failed'];
    ids bigint[];             -- the block's batches
    held bigint[] := '{}';    -- those locked, in id order, and what the block did to each
    locked preorders_preorderbatch[] := '{}';
    reserved integer[] := '{}';
    offered integer[] := '{}';
    grown integer[] := '{}';
    freed integer[] := '{}';
    any_offered boolean := false;
    b preorders_preorderbatch;
    bi integer;
    e json;
    i integer := -1;
    r preorders_reservation;
    rid bigint;
    made_ids bigint[] := '{}';
    made_by integer[] := '{}';
    refused jsonb := '{}';  -- "user:key" -> the verdict its twin gets too
    taken jsonb := '{}';    -- "batch:option" -> units held of a capped option
    twin text;
    pos integer;
    already integer;
    option_cap integer;
    option_units integer;
    room integer;
    offer preorders_waitlistentry;
BEGIN
    IF engine_block THEN  -- the block's COMMIT does not wait for the WAL flush (the engine's)
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    SELECT array_agg(DISTINCT (x ->> 'batch_id')::bigint) INTO ids FROM json_array_elements(requests) x;
    FOR b IN
        SELECT * FROM preorders_preorderbatch WHERE id = ANY(ids) ORDER BY id FOR UPDATE
    LOOP
        locked := locked || b;
        held := held || b.id;
        reserved := reserved || b.reserved_units;
        offered := offered || b.offered_units;
        grown := grown || 0;
        freed := freed || 0;
        any_offered := any_offered OR b.offered_units > 0;
    END LOOP;

    FOR e IN SELECT value FROM json_array_elements(requests) LOOP
        i := i + 1;
        r := json_populate_record(NULL::preorders_reservation, e);
        req := i; verdict := NULL; ref := NULL; num1 := NULL; num2 := NULL; moment := NULL;
        twin := r.user_id || ':' || r.request_key;

        SELECT x.id INTO rid FROM preorders_reservation x
         WHERE x.user_id = r.user_id AND x.request_key = r.request_key;
        IF FOUND THEN
            pos := array_position(made_ids, rid);
            IF pos IS NULL THEN
                verdict := 'existing'; ref := rid;
            ELSE  -- its twin earlier in this block made it
                verdict := 'made'; ref := rid; num1 := made_by[pos];
            END IF;
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF refused ? twin THEN  -- its twin earlier in this block was refused: so is it
            verdict := refused -> twin ->> 0;
            num1 := (refused -> twin ->> 1)::integer;
            num2 := (refused -> twin ->> 2)::integer;
            moment := (refused -> twin ->> 3)::timestamptz;
            RETURN NEXT;
            CONTINUE;
        END IF;
        bi := array_position(held, r.batch_id);
        IF bi IS NULL THEN
            verdict := 'gone';
            RETURN NEXT;
            CONTINUE;
        END IF;
        b := locked[bi];
        IF b.deposit_per_unit > 0 THEN
            verdict := 'slow';
            RETURN NEXT;
            CONTINUE;
        END IF;

        offer := NULL;
        option_cap := NULL;
        IF b.status IN ('draft', 'scheduled') OR (b.status = 'open' AND block_at < b.opens_at) THEN
            verdict := 'not_open'; moment := b.opens_at;
        ELSIF b.status <> 'open' OR block_at >= b.closes_at THEN
            verdict := 'closed';
        ELSIF r.quantity < 1 THEN
            verdict := 'too_few';
        END IF;
        IF verdict IS NULL THEN
            SELECT coalesce(sum(x.quantity), 0) INTO already FROM preorders_reservation x
             WHERE x.batch_id = b.id AND x.user_id = r.user_id AND x.status = ANY(counted);
            IF already + r.quantity > b.per_customer_limit THEN
                verdict := 'limit'; num1 := b.per_customer_limit; num2 := already;
            ELSIF NOT EXISTS (
                SELECT FROM catalog_variant v
                 WHERE v.id = r.variant_id AND v.is_active AND v.product_id = b.product_id
            ) THEN
                verdict := 'not_an_option';
            END IF;
        END IF;
        IF verdict IS NULL THEN
            SELECT c.cap INTO option_cap FROM preorders_variantcap c
             WHERE c.batch_id = b.id AND c.variant_id = r.variant_id;
            IF option_cap IS NOT NULL THEN
                IF taken ? (b.id || ':' || r.variant_id) THEN
                    option_units := (taken ->> (b.id || ':' || r.variant_id))::integer;
                ELSE  -- once a block: the option's rows of the batch
                    SELECT coalesce(sum(x.quantity), 0) INTO option_units
                      FROM preorders_reservation x
                     WHERE x.batch_id = b.id AND x.variant_id = r.variant_id
                       AND x.status = ANY(counted);
                END IF;
                IF r.quantity > option_cap - option_units THEN
                    verdict := 'option_short'; num1 := option_cap - option_units;
                END IF;
            END IF;
        END IF;
        IF verdict IS NULL THEN
            IF any_offered THEN
                SELECT * INTO offer FROM preorders_waitlistentry w
                 WHERE w.batch_id = b.id AND w.user_id = r.user_id AND w.status = 'offered'
                   AND w.offer_expires_at > block_at
                   FOR UPDATE;
            END IF;
            IF b.cap IS NOT NULL THEN
                room := greatest(b.cap - reserved[bi] - offered[bi], 0) + coalesce(offer.quantity, 0);
                IF r.quantity > room THEN
                    verdict := 'batch_short'; num1 := room;
                END IF;
            END IF;
        END IF;
        IF verdict IS NOT NULL THEN
            refused := refused || jsonb_build_object(twin, jsonb_build_array(verdict, num1, num2, moment));
            RETURN NEXT;
            CONTINUE;
        END IF;

        IF offer.id IS NOT NULL AND offer.quantity > r.quantity AND commit_follows THEN
            -- the rest of the offer goes to the next in line, by the caller, before the COMMIT
            RAISE EXCEPTION 'preorders_intake_block: an offer partly taken' USING ERRCODE = 'FH001';
        END IF;
        INSERT INTO preorders_reservation (
            batch_id, user_id, variant_id, saved_card_id, quantity, request_key,
            ship_name, ship_line1, ship_line2, ship_city, ship_postal_code, ship_country,
            ship_phone, status, deposit_paid, deposit_refunded, failure_message, receipt_due,
            created_at, updated_at
        ) VALUES (
            r.batch_id, r.user_id, r.variant_id, r.saved_card_id, r.quantity, r.request_key,
            r.ship_name, r.ship_line1, r.ship_line2, r.ship_city, r.ship_postal_code,
            r.ship_country, r.ship_phone, 'held', 0, 0, '', true, block_at, block_at
        )
        ON CONFLICT (user_id, request_key) DO NOTHING
        RETURNING id INTO rid;
        IF rid IS NULL THEN  -- its twin, sent to another batch's form, committed first
            SELECT x.id INTO rid FROM preorders_reservation x
             WHERE x.user_id = r.user_id AND x.request_key = r.request_key;
            verdict := 'existing'; ref := rid;
            RETURN NEXT;
            CONTINUE;
        END IF;
        INSERT INTO preorders_preorderevent
            (batch_id, reservation_id, actor_id, from_status, to_status, note, created_at)
        VALUES (r.batch_id, rid, r.user_id, '', 'held', left(e ->> 'note', 300), block_at);
        reserved[bi] := reserved[bi] + r.quantity;
        grown[bi] := grown[bi] + r.quantity;
        IF option_cap IS NOT NULL THEN
            taken := taken || jsonb_build_object(b.id || ':' || r.variant_id, option_units + r.quantity);
        END IF;
        IF offer.id IS NOT NULL THEN
            offered[bi] := offered[bi] - offer.quantity;
            freed[bi] := freed[bi] + offer.quantity;
            UPDATE preorders_waitlistentry SET status = 'claimed' WHERE id = offer.id;
            IF offer.quantity > r.quantity THEN
                req := NULL; verdict := 'reoffer'; ref := b.id;
                RETURN NEXT;
                req := i;
            END IF;
        END IF;
        made_ids := made_ids || rid;
        made_by := made_by || i;
        verdict := 'made'; ref := rid; num1 := i;
        RETURN NEXT;
    END LOOP;

    FOR bi IN 1 .. coalesce(array_length(held, 1), 0) LOOP
        CONTINUE WHEN grown[bi] = 0;
        UPDATE preorders_preorderbatch
           SET reserved_units = reserved_units + grown[bi], offered_units = offered_units - freed[bi]
         WHERE id = held[bi];
        IF locked[bi].close_when_full AND locked[bi].cap IS NOT NULL THEN
            req := NULL; verdict := 'close'; ref := held[bi]; num1 := NULL; num2 := NULL; moment := NULL;
            RETURN NEXT;
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
