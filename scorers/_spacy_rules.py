"""spaCy's English punctuation classes and tokenizer special cases (spaCy 3.x), the data
behind ``metamix.scorers._tokens``'s imitation of its tokenizer.

Kept as data, apart from the code that applies it, so the rules stay readable.
"""

from __future__ import annotations

#: spaCy ``LIST_PUNCT``: split off as a prefix or suffix anywhere in a chunk's affixes
SPACY_PUNCT: frozenset[str] = frozenset('!#&()*,:;<>?[]_{}¡·¿،؛؟٪۔।…、。！，：；？～')
#: spaCy ``LIST_QUOTES``
SPACY_QUOTES: frozenset[str] = frozenset('"\',`«´»‘’‚“”„⟦⟧〈〉《》「」『』【】〔〕（）')
#: spaCy ``LIST_CURRENCY`` (prefixes only)
SPACY_CURRENCY: frozenset[str] = frozenset('$£¥฿₠₡₢₣₤₥₦₧₨₩₪₫€₭₮₯₰₱₲₳₴₵₶₷₸₹₺₻₼₽₾₿﷼')
#: spaCy sentencizer's default punct_chars (a token equal to one ends a sentence)
SENTENCE_END_CHARS = (
    "!.?։؟۔܀܁܂߹।॥၊။።፧፨᙮᜵᜶᠃᠉᥄᥅᪨᪩᪪᪫᭚᭛᭞᭟᰻᰼᱾᱿‼‽⁇⁈⁉⸮⸼꓿꘎꘏꛳꛷꡶꡷꣎꣏꤯꧈꧉꩝꩞꩟꫰꫱꯫﹒﹖﹗！．？"
    "𐩖𐩗𑁇𑁈𑂾𑂿𑃀𑃁𑅁𑅂𑅃𑇅𑇆𑇍𑇞𑇟𑈸𑈹𑈻𑈼𑊩𑑋𑑌𑗂𑗃𑗉𑗊𑗋𑗌𑗍𑗎𑗏𑗐𑗑𑗒𑗓𑗔𑗕𑗖𑗗𑙁𑙂𑜼𑜽𑜾𑩂𑩃𑪛𑪜𑱁𑱂𖩮𖩯𖫵𖬷𖬸𖭄𛲟𝪈｡。"
)
#: spaCy special cases (tokenizer exceptions that stay one token): adjacent tokens spelling
#: one of these are merged, as spaCy does after splitting affixes.
SPECIAL_TOKENS: frozenset[str] = frozenset(
    (
        "'", "''", "'Cause", "'Cos", "'Coz", "'Cuz", "'S", "'bout", "'cause", "'cos", "'coz",
        "'cuz", "'d", "'em", "'ll", "'nuff", "'re", "'s", '(*_*)', '(-8', '(-:', '(-;', '(-_-)',
        '(._.)', '(:', '(;', '(=', '(>_<)', '(^_^)', '(o:', ')-:', '):', '-_-', '-__-', '._.',
        '0.0', '0.o', '0_0', '0_o', '8)', '8-)', '8-D', ":'(", ":')", ":'-(", ":'-)", ':(',
        ':((', ':(((', ':()', ':)', ':))', ':)))', ':*', ':-(', ':-((', ':-(((', ':-)', ':-))',
        ':-)))', ':-*', ':-/', ':-0', ':-3', ':->', ':-D', ':-O', ':-P', ':-X', ':-]', ':-o',
        ':-p', ':-x', ':-|', ':-}', ':/', ':0', ':1', ':3', ':>', ':D', ':O', ':P', ':X', ':]',
        ':o', ':o)', ':p', ':x', ':|', ':}', ';)', ';-)', ';-D', ';D', ';_;', '<.<', '</3',
        '<3', '<33', '<333', '<space>', '=(', '=)', '=/', '=3', '=D', '=[', '=]', '=|', '>.<',
        '>.>', '>:(', '>:o', '><(((*>', '@_@', 'Adm.', 'Ak.', 'Ala.', 'Apr.', 'Ariz.', 'Ark.',
        'Aug.', 'Bros.', 'C++', 'Calif.', 'Co.', 'Colo.', 'Conn.', 'Corp.', 'D.C.', 'Dec.',
        'Del.', "Doin'", 'Dr.', 'E.G.', 'E.g.', 'Feb.', 'Fla.', 'Ga.', 'Gen.', "Goin'", 'Gov.',
        "Havin'", 'I.E.', 'I.e.', 'Ia.', 'Id.', 'Ill.', 'Inc.', 'Ind.', 'Jan.', 'Jr.', 'Jul.',
        'Jun.', 'Kan.', 'Kans.', 'Ky.', 'La.', "Lovin'", 'Ltd.', "Ma'am", 'Mar.', 'Mass.',
        'Md.', 'Messrs.', 'Mich.', 'Minn.', 'Miss.', 'Mo.', 'Mont.', 'Mr.', 'Mrs.', 'Ms.',
        'Mt.', 'N.C.', 'N.D.', 'N.H.', 'N.J.', 'N.M.', 'N.Y.', 'Neb.', 'Nebr.', 'Nev.',
        "Nothin'", 'Nov.', "Nuthin'", "O'clock", 'O.O', 'O.o', 'O_O', 'O_o', 'Oct.', 'Okla.',
        "Ol'", 'Ore.', 'Pa.', 'Ph.D.', 'Prof.', 'Rep.', 'Rev.', 'S.C.', 'Sen.', 'Sep.', 'Sept.',
        "Somethin'", 'St.', 'Tenn.', 'V.V', 'V_V', 'Va.', 'Wash.', 'Wis.', '[-:', '[:', '[=',
        '\\")', '\\n', '\\t', ']=', '^_^', '^__^', '^___^', 'a.', 'a.m.', 'and/or', 'b.', 'c.',
        'co.', 'd.', "doin'", 'e.', 'e.g.', 'f.', 'g.', "goin'", 'h.', "havin'", 'i.', 'i.e.',
        'j.', 'k.', 'l.', "lovin'", 'm.', "ma'am", 'n.', "nothin'", "nuthin'", "o'clock", 'o.',
        'o.0', 'o.O', 'o.o', 'o_0', 'o_O', 'o_o', "ol'", 'p.', 'p.m.', 'q.', 'r.', 's.',
        "somethin'", 't.', 'u.', 'v.', 'v.s.', 'v.v', 'v_v', 'vs.', 'w.', 'w/o', 'x.', 'y.',
        'z.',
    )
)
