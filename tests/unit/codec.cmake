# SPDX-License-Identifier: MIT
# Unit tests of the frame layer: gzip codec, base64, the JSON envelope and the
# redelivery dedupe set, the session's pending requests.
blazebot_unit_test(codec unit/test_codec.c)
blazebot_unit_test(base64 unit/test_base64.c)
blazebot_unit_test(envelope unit/test_envelope.c)
blazebot_unit_test(jscan unit/test_jscan.c)
blazebot_unit_test(dedupe unit/test_dedupe.c)
blazebot_unit_test(url unit/test_url.c)
blazebot_unit_test(util unit/test_util.c)
blazebot_unit_test(outbox unit/test_outbox.c)
blazebot_unit_test(pending unit/test_pending.c)
