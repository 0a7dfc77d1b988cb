# problemap — build, test, demo.  `make demo` and `make test` are all a
# person needs on a fresh Debian 12 machine (both run `make deps` first).

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
SAN     ?=

PKGS    := geos proj cairo pangocairo libpng zlib libxxhash sqlite3 jansson libpq libmicrohttpd
CC      ?= cc
WARN    := -Wall -Wextra -Wshadow -Wvla -Werror
# CFLAGS/LDFLAGS are the user's (optimisation, debug); what the build needs
# goes into PM_CFLAGS/PM_LDFLAGS, so `make CFLAGS=-O0` keeps the rest.
CFLAGS  ?= -O2 -g
PM_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) -MMD -MP -pthread \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -DPM_DATADIR='"$(PREFIX)/share/problemap"'
PM_LDFLAGS :=
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
ifeq ($(SAN),1)
PM_CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
PM_LDFLAGS += -fsanitize=address,undefined
endif
# SAN=fuzz (with CC=clang): libFuzzer's coverage on everything, plus ASan and
# UBSan; the fuzz targets then link libFuzzer's main (tools/fuzz.sh).
ifeq ($(SAN),fuzz)
PM_CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=all
PM_LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC := $(sort $(wildcard engine/*.c geodata/*.c render/*.c sql/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB     := $(BUILD)/libproblemap.a
BIN     := $(BUILD)/problemap
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps demo test test-unit test-e2e test-asan bench install clean fuzz fuzz-brief \
        test-fuzz-regress check-valgrind
all: $(BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(PM_CFLAGS) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

APP_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard apps/*.c))) $(BUILD)/obj/gen/web_assets.o

# The viewer (web/) and Leaflet (Debian's libjs-leaflet) embedded in the program.
LEAFLET_DIR ?= /usr/share/javascript/leaflet
$(BUILD)/gen/web_assets.c: tools/embed_web.sh $(wildcard web/*)
	@sh tools/embed_web.sh $@ web $(LEAFLET_DIR)
$(BUILD)/obj/gen/web_assets.o: $(BUILD)/gen/web_assets.c apps/web_assets.h
	@mkdir -p $(dir $@)
	$(CC) $(PM_CFLAGS) $(CFLAGS) -I. -c $< -o $@

$(BIN): $(APP_OBJ) $(LIB)
	$(CC) $(PM_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(PM_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

deps:
	@sh tools/deps.sh

# The main job on the sample data the repository ships.
demo: deps
	@$(MAKE) --no-print-directory all
	@sh tools/demo.sh $(BIN)

test-unit: $(TEST_BIN) test-fuzz-regress
	@sh tests/run_unit.sh $(TEST_BIN)

# Fuzz targets (tests/fuzz/fuzz_*.c).  Normally linked with a main that
# feeds them files: `test-fuzz-regress` replays the seed corpora and every
# input a fuzzer once crashed on.  With SAN=fuzz they link libFuzzer.
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
ifeq ($(SAN),fuzz)
FUZZ_MAIN :=
FUZZ_LINK := -fsanitize=fuzzer
else
FUZZ_MAIN := $(BUILD)/obj/tests/fuzz/standalone.o
FUZZ_LINK :=
endif
# The tile-address parser lives in the program (apps/serve_http.c).
$(BUILD)/fuzz/fuzz_tile_path: $(filter-out $(BUILD)/obj/apps/problemap.o,$(APP_OBJ))
$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(FUZZ_MAIN) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(PM_LDFLAGS) $(FUZZ_LINK) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(LDLIBS)

test-fuzz-regress: $(FUZZ_BIN)
	@sh tools/fuzz.sh --regress $(BUILD)/fuzz

# Fuzzing proper (clang, libFuzzer): each target PM_FUZZ_SECONDS (600) in
# build-fuzz; a crash, leak or timeout is copied to tests/fuzz/regress/.
fuzz:
	@sh tools/fuzz.sh

fuzz-brief:
	@PM_FUZZ_SECONDS=30 PM_FUZZ_JOBS=2 sh tools/fuzz.sh

# The unit suites and a few program runs under valgrind memcheck
# (tools/valgrind.sh): zero errors, zero definite or indirect leaks.
check-valgrind: all $(TEST_BIN)
	@sh tools/valgrind.sh $(BUILD)

test-e2e: $(BIN)
	@sh tests/e2e/run.sh $(BIN)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	@PM_E2E_N=20000 PM_DB_ORACLE_N=125000 PM_PIPELINE_FAIL_STEP=3 PM_E2E_DISK=0 \
	    LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp \
	    $(MAKE) --no-print-directory BUILD=build-asan SAN=1 CFLAGS="-O1 -g" test-unit test-e2e

test: deps
	@$(MAKE) --no-print-directory all $(TEST_BIN)
	@$(MAKE) --no-print-directory test-unit test-e2e
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory fuzz-brief
	@echo "all test suites passed (normal and ASan+UBSan builds, each fuzz target briefly)"

bench: deps
	@$(MAKE) --no-print-directory all
	@sh tools/bench.sh $(BIN)

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/share/problemap \
	    $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/problemap
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libproblemap.a
	install -m 644 data/topics.json data/ru_towns.csv $(DESTDIR)$(PREFIX)/share/problemap/
	cp -r data/mappings $(DESTDIR)$(PREFIX)/share/problemap/
	install -m 644 docs/problemap.1 $(DESTDIR)$(PREFIX)/share/man/man1/problemap.1

clean:
	rm -rf build build-asan build-fuzz out

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Test objects are intermediate files: keep them between runs.
.SECONDARY:
