# Test stand-in for IPFire's lang.pl: %Lang::tr from the add-on language files of the box's language.
package Lang;
our %tr;
my $language = 'en';
if (open(my $fh, '<', "${General::swroot}/main/settings")) {
	while (<$fh>) { $language = $1 if /^LANGUAGE=(\w+)/; }
}
our %tr;
for my $lang ('en', $language) {
	my $file = "${General::swroot}/addon-lang/zonevpn.$lang.pl";
	next unless -e $file;
	do $file;
}
1;
