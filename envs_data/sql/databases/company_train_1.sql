BEGIN TRANSACTION;
CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  department TEXT NOT NULL,
  city TEXT NOT NULL,
  salary INTEGER NOT NULL,
  hire_year INTEGER NOT NULL
);
INSERT INTO employees VALUES(1,'Farid Zeller','Support','Denver',40500,2008);
INSERT INTO employees VALUES(2,'Tess Xu','Sales','Lisbon',145500,2012);
INSERT INTO employees VALUES(3,'Joel Silva','Legal','Osaka',86000,2007);
INSERT INTO employees VALUES(4,'Luis Kaplan','Support','Osaka',137000,2005);
INSERT INTO employees VALUES(5,'Gemma Ibsen','Support','Oslo',48000,2018);
INSERT INTO employees VALUES(6,'Cleo Jovanovic','Support','Lima',72000,2010);
INSERT INTO employees VALUES(7,'Quinn Xu','Legal','Denver',50000,2012);
INSERT INTO employees VALUES(8,'Zane Petrov','Finance','Osaka',51500,2008);
INSERT INTO employees VALUES(9,'Sami Ueda','Marketing','Oslo',88000,2008);
INSERT INTO employees VALUES(10,'Sami Okafor','Legal','Oslo',72500,2006);
INSERT INTO employees VALUES(11,'Wen Okafor','Legal','Lisbon',68000,2014);
INSERT INTO employees VALUES(12,'Luis Bishop','Marketing','Oslo',104500,2011);
INSERT INTO employees VALUES(13,'Rosa Ueda','Finance','Osaka',121000,2022);
INSERT INTO employees VALUES(14,'Olga Yilmaz','Sales','Denver',110500,2017);
INSERT INTO employees VALUES(15,'Greta Varga','Support','Lisbon',68000,2016);
INSERT INTO employees VALUES(16,'Tess Arendt','Support','Nairobi',78500,2014);
INSERT INTO employees VALUES(17,'Alma Lindqvist','Marketing','Lisbon',87000,2012);
INSERT INTO employees VALUES(18,'Boris Jovanovic','Marketing','Osaka',32500,2012);
INSERT INTO employees VALUES(19,'Ximena Dalton','Sales','Lisbon',32500,2015);
INSERT INTO employees VALUES(20,'Fynn Walsh','Finance','Oslo',68000,2006);
INSERT INTO employees VALUES(21,'Greta Petrov','Sales','Lisbon',138500,2014);
INSERT INTO employees VALUES(22,'Elena Varga','Finance','Denver',124000,2009);
INSERT INTO employees VALUES(23,'Quinn Silva','Finance','Denver',128000,2016);
INSERT INTO employees VALUES(24,'Luis Ibsen','Marketing','Osaka',83500,2023);
INSERT INTO employees VALUES(25,'Fynn Haddad','Support','Denver',103500,2020);
INSERT INTO employees VALUES(26,'Maya Bishop','Finance','Oslo',120000,2010);
INSERT INTO employees VALUES(27,'Yara Rahman','Legal','Osaka',66500,2009);
INSERT INTO employees VALUES(28,'Sami Eklund','Sales','Nairobi',53000,2009);
INSERT INTO employees VALUES(29,'Carla Nakamura','Marketing','Denver',65000,2008);
INSERT INTO employees VALUES(30,'Jamal Jovanovic','Marketing','Lisbon',30500,2011);
INSERT INTO employees VALUES(31,'Ada Petrov','Sales','Nairobi',118000,2015);
INSERT INTO employees VALUES(32,'Zane Dalton','Support','Lisbon',64000,2020);
INSERT INTO employees VALUES(33,'Edith Jovanovic','Finance','Lisbon',51500,2013);
INSERT INTO employees VALUES(34,'Tess Petrov','Legal','Lima',54500,2012);
INSERT INTO employees VALUES(35,'Vera Haddad','Support','Denver',53000,2006);
INSERT INTO employees VALUES(36,'Wen Nakamura','Sales','Lisbon',55000,2008);
INSERT INTO employees VALUES(37,'Maya Garza','Legal','Lima',36000,2020);
INSERT INTO employees VALUES(38,'Bruno Abbott','Sales','Denver',55000,2021);
INSERT INTO employees VALUES(39,'Umar Haddad','Marketing','Lima',144500,2018);
INSERT INTO employees VALUES(40,'Luis Eklund','Engineering','Oslo',145000,2021);
INSERT INTO employees VALUES(41,'Bruno Xu','Legal','Nairobi',104000,2010);
INSERT INTO employees VALUES(42,'Edith Baker','Finance','Osaka',55500,2006);
INSERT INTO employees VALUES(43,'Edith Ibsen','Support','Nairobi',109000,2018);
INSERT INTO employees VALUES(44,'Ines Garza','Support','Lima',93000,2009);
INSERT INTO employees VALUES(45,'Dario Zeller','Finance','Nairobi',136500,2021);
INSERT INTO employees VALUES(46,'Farid Silva','Support','Lima',39500,2010);
INSERT INTO employees VALUES(47,'Carla Moreau','Support','Oslo',70000,2010);
INSERT INTO employees VALUES(48,'Dario Yilmaz','Support','Osaka',144500,2016);
INSERT INTO employees VALUES(49,'Pavel Lindqvist','Legal','Nairobi',84000,2018);
INSERT INTO employees VALUES(50,'Sami Yilmaz','Marketing','Oslo',81500,2018);
INSERT INTO employees VALUES(51,'Ines Varga','Support','Osaka',94000,2012);
INSERT INTO employees VALUES(52,'Gemma Tanaka','Legal','Osaka',40500,2005);
INSERT INTO employees VALUES(53,'Edith Okafor','Legal','Lima',105500,2020);
INSERT INTO employees VALUES(54,'Farid Arendt','Support','Lisbon',71500,2015);
INSERT INTO employees VALUES(55,'Yara Dalton','Marketing','Osaka',111000,2023);
INSERT INTO employees VALUES(56,'Cleo Ibsen','Marketing','Nairobi',141000,2021);
INSERT INTO employees VALUES(57,'Vera Eklund','Sales','Lisbon',135500,2007);
INSERT INTO employees VALUES(58,'Hamza Arendt','Legal','Denver',135500,2010);
INSERT INTO employees VALUES(59,'Edith Xu','Marketing','Lima',61000,2007);
INSERT INTO employees VALUES(60,'Vera Lindqvist','Sales','Nairobi',54000,2006);
COMMIT;
