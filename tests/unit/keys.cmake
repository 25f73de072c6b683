# SPDX-License-Identifier: MIT
# Unit tests of the identity layer: ini config, keystore, JWT auth, and the
# simulator's keygen / gen-tls tools (compiled straight into their test).
blazebot_unit_test(config unit/test_config.c)
blazebot_unit_test(keystore unit/test_keystore.c)
blazebot_unit_test(auth unit/test_auth.c)
blazebot_unit_test(keygen unit/test_keygen.c sim/keygen.c)
target_include_directories(test_keygen PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/sim)
