/*
 * words.h - a [rule NAME] command: split into words once, when thlhp.ini
 * is read, as a POSIX shell splits them but with no expansion of any kind,
 * then its {placeholders} substituted inside each word for each target.
 * No shell ever sees a command or a value: each word is one argument.
 */
#ifndef THLHP_WORDS_H
#define THLHP_WORDS_H

#include <stddef.h>

/* Split s into words, as sh(1) does before expansion: blanks (space,
 * tab) separate words; '...' keeps everything inside as it is; "..."
 * keeps everything inside except that \ escapes " \ $ ` and newline;
 * outside quotes \ escapes the next character; an empty quoted word ("")
 * is a word.  $, `, *, ?, ~ and ${NAME} are plain characters.  A newline,
 * CR or other control byte outside quotes is an error, as is an
 * unterminated quote or a trailing backslash.  Braces are kept as
 * written, for words_check and words_expand.  Returns a NULL-terminated
 * vector (strv_free), or NULL with err set ("unterminated ' quote at
 * column 12"); an empty command is an error too. */
char **words_split(const char *s, char *err, size_t errlen);

/* One placeholder's value(s) for words_expand. */
struct word_value {
	const char *name;         /* "patient", "in", ... */
	const char *const *v;     /* its values, NULL-terminated; usually one */
};

/* Check every {name} in argv against known (NULL-terminated): 0, or -1
 * with err naming the first unknown one ("unknown placeholder {seris};
 * known: {patient} {in} ...") or a lone { or } ("'{' without '}' in word
 * 3: write {{ for a literal brace").  {{ and }} are literal braces. */
int words_check(char *const *argv, const char *const *known, char *err, size_t errlen);

/* argv with each {name} replaced by its value from vals (n of them); {{
 * and }} become { and }.  A word that is exactly one placeholder with
 * several values becomes that many words, in order (Snakemake's
 * {input}); with zero values it becomes no word.  A placeholder with
 * several values inside a longer word is joined with single spaces.
 * Unknown names (words_check was not called) expand to "".  Returns a
 * NULL-terminated vector (strv_free). */
char **words_expand(char *const *argv, const struct word_value *vals, size_t n);

/* argv as one line for messages and for the command signature: each word
 * quoted as sh(1) would read it back (plain words as they are, others in
 * '...' with ' written '\''); malloc'd. */
char *words_join(char *const *argv);

#endif
