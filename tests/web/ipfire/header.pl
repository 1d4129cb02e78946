# Test stand-in for IPFire's header.pl: the same function names and the same page structure (menu,
# `section.is-box` boxes with `h2.title`, `table.tbl`/`table.form`, zone colours), with our own markup.
package Header;
use strict;

sub showhttpheaders {
	print "Pragma: no-cache\nCache-control: no-cache\nConnection: close\nContent-type: text/html; charset=UTF-8\n\n";
}

sub openpage {
	my ($title, $menu, $extra) = @_;
	print <<"END";
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ipfire.localdomain - $title</title>
<style>
body { margin: 0; font-family: sans-serif; font-size: 14px; background: #f5f5f5; color: #222; }
header { background: #ff4136; color: #fff; padding: 12px 24px; font-size: 22px; font-weight: bold; }
nav ul { list-style: none; margin: 0; padding: 0 24px; background: #333; display: flex; }
nav li { padding: 10px 14px; color: #ddd; } nav li.active { background: #555; color: #fff; }
main { max-width: 1100px; margin: 20px auto; }
section.is-box { background: #fff; border: 1px solid #ddd; border-radius: 4px; margin: 0 0 18px; padding: 12px 18px; }
section.is-box h2.title { font-size: 16px; margin: 0 0 10px; border-bottom: 1px solid #eee; padding-bottom: 6px; }
table.tbl { border-collapse: collapse; } table.tbl th { text-align: left; background: #eee; padding: 6px; }
table.tbl td { padding: 6px; border-top: 1px solid #eee; }
.tbl .intf { font-weight: bold; color: #fff; } .intf.green { background: #4c9a2a; } .intf.blue { background: #3170c0; }
.intf.orange { background: #f08000; } .intf.red { background: #c33; }
tr.action td { text-align: right; padding-top: 10px; } .error { color: #c33; } .ok { color: #4c9a2a; }
footer { text-align: center; color: #888; padding: 20px; }
</style></head><body>
<header>IPFire</header>
<nav><ul><li>System</li><li>Status</li><li>Network</li><li class="active">Services</li><li>Firewall</li><li>IPFire</li><li>Logs</li></ul></nav>
<main><h1>$title</h1>
END
}

sub openbigbox { print "<div class=\"bigbox\">\n"; }
sub closebigbox { print "</div>\n"; }

sub openbox {
	my ($width, $align, $caption) = @_;
	print "<section class=\"section is-box\">\n";
	print "<h2 class=\"title\">$caption</h2>\n" if $caption;
}

sub closebox { print "</section>\n"; }
sub closepage { print "</main><footer>IPFire (test stand-in frame)</footer></body></html>\n"; }
1;
